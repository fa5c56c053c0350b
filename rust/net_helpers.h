/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel TCP sockets and kernel threads for rtarget's network fabrics (iSCSI, NVMe/TCP): what
 * the 7.3 kernel crate lacks. Defined in net_helpers.c, bound by our bindgen run, wrapped by
 * net.rs and thread.rs. Prefixes: rt_sock_, rt_kthread_.
 *
 * Every rt_sock_* call may sleep (process context); rt_sock_shutdown() may be called from
 * another thread to wake one blocked in accept, recv or send.
 */
#ifndef RTARGET_NET_HELPERS_H
#define RTARGET_NET_HELPERS_H

#include <linux/net.h>
#include <linux/sched.h>
#include <linux/scatterlist.h>
#include <linux/types.h>

/* An address: family AF_INET (4 bytes) or AF_INET6 (16 bytes), port in host order. */
struct rt_sockaddr {
	int family;
	u8 addr[16];
	u16 port;
};

int rt_sock_listen(const struct rt_sockaddr *a, int backlog, struct socket **out);
int rt_sock_accept(struct socket *listener, struct socket **out);
int rt_sock_connect(const struct rt_sockaddr *a, struct socket **out);
int rt_sock_name(struct socket *s, bool peer, struct rt_sockaddr *a);
/* Receives up to len bytes (all of them with waitall): bytes received, 0 at EOF, or -errno. */
int rt_sock_recv(struct socket *s, void *buf, size_t len, bool waitall);
/* Sends all len bytes (MSG_MORE with more): 0 or -errno. */
int rt_sock_send(struct socket *s, const void *buf, size_t len, bool more);
/* Sends / receives len bytes of a scatterlist from byte skip, without copying them in a
 * bounce buffer; splice sends the pages by reference (MSG_SPLICE_PAGES): only for pages that
 * are not written again before the peer acknowledges them. */
int rt_sock_send_sg(struct socket *s, struct scatterlist *sg, unsigned int nents, size_t skip,
		    size_t len, bool more, bool splice);
int rt_sock_recv_sg(struct socket *s, struct scatterlist *sg, unsigned int nents, size_t skip,
		    size_t len);
/* TCP_CORK on: sends are held back to fill segments (PSH still marks each send's end)... */
void rt_sock_cork(struct socket *s);
/* ... until TCP_CORK goes off: the pending segments go out. */
void rt_sock_push(struct socket *s);
/* Receives give up (-EAGAIN) after ms milliseconds without data; 0: never. */
void rt_sock_set_rcvtimeo(struct socket *s, unsigned int ms);
void rt_sock_shutdown(struct socket *s);
void rt_sock_release(struct socket *s);

/* CRC-32C (iSCSI and NVMe/TCP digests), continued from crc. */
u32 rt_crc32c(u32 crc, const void *p, size_t len);
/* A message digest of the kernel crypto API by name ("md5", "sha1", "sha256", "sha3-256"):
 * an opaque struct crypto_shash *, or an ERR_PTR. */
void *rt_shash_alloc(const char *name);
unsigned int rt_shash_digestsize(void *tfm);
/* out (digestsize bytes) = digest of the concatenation of the n buffers. */
int rt_shash_digest(void *tfm, const void *const *bufs, const size_t *lens,
		    unsigned int n, u8 *out);
void rt_shash_free(void *tfm);
/* MD5 by the kernel's library, for kernels whose crypto API lacks "md5"; -ENOENT without it. */
int rt_md5_digest(const void *const *bufs, const size_t *lens, unsigned int n, u8 *out);
void rt_random_bytes(void *buf, size_t len);

/* A kernel thread running fn(data); the caller holds a reference on it until rt_kthread_stop. */
struct task_struct *rt_kthread_run(int (*fn)(void *data), void *data, const char *name);
/* Asks it to stop, wakes it, waits for fn to return, drops the reference: fn's result. */
int rt_kthread_stop(struct task_struct *t);
bool rt_kthread_should_stop(void);
unsigned int rt_online_cpu(unsigned int n);
int rt_pin_current(unsigned int cpu);

#endif
