//! Serial number arithmetic (RFC 1982, 32 bits) for CmdSN, StatSN, DataSN and R2TSN, and the
//! command window (RFC 7143 4.2.2.1).

/// `a` comes before `b` in serial number order.
pub fn before(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// `a` is `b` or comes after it.
pub fn at_or_after(a: u32, b: u32) -> bool {
    !before(a, b)
}

/// Where a non-immediate command's CmdSN falls against the window [ExpCmdSN, MaxCmdSN].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The next command to execute.
    Next,
    /// Inside the window, ahead of ExpCmdSN: held until the gap fills.
    Ahead,
    /// Before ExpCmdSN (a duplicate) or beyond MaxCmdSN: silently ignored (RFC 7143 4.2.2.1).
    Outside,
}

/// Classifies `cmdsn` against the window; an empty window (MaxCmdSN = ExpCmdSN - 1) takes nothing.
pub fn window(cmdsn: u32, exp: u32, max: u32) -> Window {
    if before(cmdsn, exp) || before(max, cmdsn) {
        Window::Outside
    } else if cmdsn == exp {
        Window::Next
    } else {
        Window::Ahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_wraps() {
        assert!(before(1, 2));
        assert!(!before(2, 1));
        assert!(!before(5, 5));
        assert!(before(u32::MAX, 0));
        assert!(before(0xffff_fff0, 0x10));
        assert!(!before(0x10, 0xffff_fff0));
        assert!(at_or_after(7, 7));
        assert!(at_or_after(0, u32::MAX));
    }

    #[test]
    fn command_window() {
        assert_eq!(window(10, 10, 41), Window::Next);
        assert_eq!(window(11, 10, 41), Window::Ahead);
        assert_eq!(window(41, 10, 41), Window::Ahead);
        assert_eq!(window(42, 10, 41), Window::Outside);
        assert_eq!(window(9, 10, 41), Window::Outside);
        // Across the wrap.
        assert_eq!(window(u32::MAX, u32::MAX, 5), Window::Next);
        assert_eq!(window(3, u32::MAX, 5), Window::Ahead);
        assert_eq!(window(6, u32::MAX, 5), Window::Outside);
        // MaxCmdSN = ExpCmdSN - 1: closed.
        assert_eq!(window(10, 10, 9), Window::Outside);
    }
}
