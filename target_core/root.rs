// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/config/target`: the configfs subsystem rtarget shares with LIO's ABI.
//! `mkdir target/<fabric>` binds a registered fabric (loading its module on demand).

use crate::fabric::{self, Fabric};
use crate::rt::module_ref::{request_module, ModuleRef};
use crate::rt::uts;
use kernel::configfs::{self, configfs_attrs};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use core::fmt::Write;
use kernel::str::Formatter;

/// LIO's core version, which rtslib shows and some tools print.
pub(crate) const TARGET_CORE_VERSION: &str = "v5.0";

/// Data of the `target` subsystem directory.
#[pin_data]
pub(crate) struct Root {}

/// `target/<fabric>`: holds the fabric's module while the directory exists.
#[pin_data]
pub(crate) struct FabricDir {
    fabric: &'static dyn Fabric,
    _owner: ModuleRef,
}

pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Root>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Root>,
        data: Root,
        child: FabricDir,
        attributes: [
            version: 0,
        ],
    };
    configfs::Subsystem::new(c"target", item_type, try_pin_init!(Root {}))
}

/// Module that implements fabric `name`, for autoloading on `mkdir` as LIO does.
fn fabric_module(name: &CStr) -> Option<&'static CStr> {
    match name.to_bytes() {
        b"loopback" => Some(c"rtarget_loop"),
        _ => None,
    }
}

#[vtable]
impl configfs::GroupOperations for Root {
    type Child = FabricDir;

    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<FabricDir>, Error>> {
        let (fabric, owner) = match fabric::get(name) {
            Ok(found) => found,
            Err(_) => {
                let module = fabric_module(name).ok_or(EINVAL)?;
                // A failed load shows up as the fabric still missing.
                let _ = request_module(module);
                fabric::get(name).map_err(|_| EINVAL)?
            }
        };
        let item_type = configfs_attrs! {
            container: configfs::Group<FabricDir>,
            data: FabricDir,
            attributes: [],
        };
        Ok(configfs::Group::new(name.try_into()?, item_type, try_pin_init!(FabricDir { fabric, _owner: owner })))
    }
}

#[vtable]
impl configfs::AttributeOperations<0> for Root {
    type Data = Root;

    fn show(_root: &Root, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut f = Formatter::new(&mut page[..]);
        writeln!(
            f,
            "Target Engine Core ConfigFS Infrastructure {} on Linux/{} on {}",
            TARGET_CORE_VERSION,
            uts::machine().to_str().unwrap_or("?"),
            uts::release().to_str().unwrap_or("?"),
        )?;
        Ok(f.bytes_written())
    }
}

impl FabricDir {
    /// The bound fabric.
    #[allow(dead_code)]
    pub(crate) fn fabric(&self) -> &'static dyn Fabric {
        self.fabric
    }
}
