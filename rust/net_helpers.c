// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel TCP sockets and kernel threads for rtarget's network fabrics; see net_helpers.h.
 * Modelled on drivers/target/iscsi/iscsi_target_login.c (iscsit_setup_np) and
 * drivers/nvme/target/tcp.c (nvmet_tcp_add_port, nvmet_try_send_data).
 *
 * Exported, because generic wrappers in rust/ are instantiated inside fabric modules.
 */
#include <crypto/hash.h>
#include <crypto/md5.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/crc32.h>
#include <linux/in.h>
#include <linux/random.h>
#include <linux/in6.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/tcp.h>
#include <linux/uio.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include "net_helpers.h"

/* bvecs per sendmsg / recvmsg of a scatterlist: on the stack, no allocation */
#define RT_SOCK_BVECS 16

static int rt_sockaddr_to(const struct rt_sockaddr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, a->addr, 4);
		s->sin_port = htons(a->port);
		return sizeof(*s);
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a->addr, 16);
		s->sin6_port = htons(a->port);
		return sizeof(*s);
	}
	return -EAFNOSUPPORT;
}

static void rt_sockaddr_from(const struct sockaddr_storage *ss, struct rt_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = ss->ss_family;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		memcpy(a->addr, &s->sin_addr, 4);
		a->port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		memcpy(a->addr, &s->sin6_addr, 16);
		a->port = ntohs(s->sin6_port);
	}
}

static int rt_sock_create(int family, struct socket **out)
{
	int ret = sock_create_kern(&init_net, family, SOCK_STREAM, IPPROTO_TCP, out);

	if (ret)
		return ret;
	(*out)->sk->sk_allocation = GFP_KERNEL;
	tcp_sock_set_nodelay((*out)->sk);
	return 0;
}

int rt_sock_listen(const struct rt_sockaddr *a, int backlog, struct socket **out)
{
	struct sockaddr_storage ss;
	struct socket *s;
	int len = rt_sockaddr_to(a, &ss), ret;

	if (len < 0)
		return len;
	ret = rt_sock_create(a->family, &s);
	if (ret)
		return ret;
	sock_set_reuseaddr(s->sk);
	if (a->family == AF_INET6) {
		/* [::] takes IPv4 too (targetcli 3's default portal), whatever bindv6only says */
		lock_sock(s->sk);
		s->sk->sk_ipv6only = false;
		release_sock(s->sk);
	}
	ret = kernel_bind(s, (struct sockaddr_unsized *)&ss, len);
	if (!ret)
		ret = kernel_listen(s, backlog);
	if (ret) {
		sock_release(s);
		return ret;
	}
	*out = s;
	return 0;
}
EXPORT_SYMBOL_GPL(rt_sock_listen);

int rt_sock_accept(struct socket *listener, struct socket **out)
{
	int ret = kernel_accept(listener, out, 0);

	if (ret)
		return ret;
	(*out)->sk->sk_allocation = GFP_KERNEL;
	tcp_sock_set_nodelay((*out)->sk);
	return 0;
}
EXPORT_SYMBOL_GPL(rt_sock_accept);

int rt_sock_connect(const struct rt_sockaddr *a, struct socket **out)
{
	struct sockaddr_storage ss;
	struct socket *s;
	int len = rt_sockaddr_to(a, &ss), ret;

	if (len < 0)
		return len;
	ret = rt_sock_create(a->family, &s);
	if (ret)
		return ret;
	ret = kernel_connect(s, (struct sockaddr_unsized *)&ss, len, 0);
	if (ret) {
		sock_release(s);
		return ret;
	}
	*out = s;
	return 0;
}
EXPORT_SYMBOL_GPL(rt_sock_connect);

int rt_sock_name(struct socket *s, bool peer, struct rt_sockaddr *a)
{
	struct sockaddr_storage ss;
	int ret;

	memset(&ss, 0, sizeof(ss));
	ret = peer ? kernel_getpeername(s, (struct sockaddr *)&ss) :
		     kernel_getsockname(s, (struct sockaddr *)&ss);
	if (ret < 0)
		return ret;
	rt_sockaddr_from(&ss, a);
	return 0;
}
EXPORT_SYMBOL_GPL(rt_sock_name);

int rt_sock_recv(struct socket *s, void *buf, size_t len, bool waitall)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	int flags = waitall ? MSG_WAITALL : 0;
	int ret;

	if (len > INT_MAX)
		return -EINVAL;
	ret = kernel_recvmsg(s, &msg, &iov, 1, len, flags);
	/* A short MSG_WAITALL read without an error is the peer's end. */
	if (waitall && ret >= 0 && ret < len)
		return ret ? -ECONNRESET : 0;
	return ret;
}
EXPORT_SYMBOL_GPL(rt_sock_recv);

int rt_sock_send(struct socket *s, const void *buf, size_t len, bool more)
{
	while (len) {
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0) };
		struct kvec iov = { .iov_base = (void *)buf, .iov_len = len };
		int ret = kernel_sendmsg(s, &msg, &iov, 1, len);

		if (ret < 0)
			return ret;
		if (ret == 0)
			return -EPIPE;
		buf += ret;
		len -= ret;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(rt_sock_send);

void rt_sock_cork(struct socket *s)
{
	tcp_sock_set_cork(s->sk, true);
}
EXPORT_SYMBOL_GPL(rt_sock_cork);

void rt_sock_push(struct socket *s)
{
	tcp_sock_set_cork(s->sk, false);
}
EXPORT_SYMBOL_GPL(rt_sock_push);

/*
 * Fills up to RT_SOCK_BVECS bvecs with the next bytes of the scatterlist walk (*sg at byte
 * *skip of it), at most len bytes: the number of bvecs, their bytes in *bytes.
 */
static int rt_sg_bvecs(struct scatterlist **sg, size_t *skip, size_t len, struct bio_vec *bv,
		       size_t *bytes)
{
	int n = 0;

	*bytes = 0;
	while (*sg && len && n < RT_SOCK_BVECS) {
		size_t in = (*sg)->length - *skip;
		size_t take = min(in, len);
		size_t off = (*sg)->offset + *skip;

		if (!in) {
			*sg = sg_next(*sg);
			*skip = 0;
			continue;
		}
		/* a multi-page bvec, as io_helpers.c builds them */
		bvec_set_page(&bv[n++], sg_page(*sg) + (off >> PAGE_SHIFT), take, off & ~PAGE_MASK);
		*skip += take;
		*bytes += take;
		len -= take;
		if (*skip == (*sg)->length) {
			*sg = sg_next(*sg);
			*skip = 0;
		}
	}
	return n;
}

/* Positions the walk at byte skip of the list: *sg and the byte within it. */
static int rt_sg_seek(struct scatterlist **sg, size_t *skip)
{
	while (*sg && *skip >= (*sg)->length) {
		*skip -= (*sg)->length;
		*sg = sg_next(*sg);
	}
	return *sg ? 0 : -EINVAL;
}

/* Sends (send) or receives len bytes of the list from byte skip, RT_SOCK_BVECS at a time. */
static int rt_sock_sg(struct socket *s, struct scatterlist *sg, size_t skip, size_t len,
		      bool send, int flags)
{
	struct bio_vec bv[RT_SOCK_BVECS];

	if (len && rt_sg_seek(&sg, &skip))
		return -EINVAL;
	while (len) {
		size_t bytes;
		int n = rt_sg_bvecs(&sg, &skip, len, bv, &bytes);
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | (send ? flags : 0) };

		if (!n)
			return -EINVAL;
		len -= bytes;
		/* More parts follow: let TCP fill its segments. */
		if (send && len)
			msg.msg_flags |= MSG_MORE;
		iov_iter_bvec(&msg.msg_iter, send ? ITER_SOURCE : ITER_DEST, bv, n, bytes);
		while (msg_data_left(&msg)) {
			int ret = send ? sock_sendmsg(s, &msg) : sock_recvmsg(s, &msg, MSG_WAITALL);

			if (ret < 0)
				return ret;
			if (ret == 0)
				return send ? -EPIPE : -ECONNRESET;
		}
	}
	return 0;
}

int rt_sock_send_sg(struct socket *s, struct scatterlist *sg, unsigned int nents, size_t skip,
		    size_t len, bool more, bool splice)
{
	return rt_sock_sg(s, sg, skip, len, true,
			  (more ? MSG_MORE : 0) | (splice ? MSG_SPLICE_PAGES : 0));
}
EXPORT_SYMBOL_GPL(rt_sock_send_sg);

int rt_sock_recv_sg(struct socket *s, struct scatterlist *sg, unsigned int nents, size_t skip,
		    size_t len)
{
	return rt_sock_sg(s, sg, skip, len, false, 0);
}
EXPORT_SYMBOL_GPL(rt_sock_recv_sg);

void rt_sock_set_rcvtimeo(struct socket *s, unsigned int ms)
{
	lock_sock(s->sk);
	WRITE_ONCE(s->sk->sk_rcvtimeo, ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT);
	release_sock(s->sk);
}
EXPORT_SYMBOL_GPL(rt_sock_set_rcvtimeo);

void rt_sock_shutdown(struct socket *s)
{
	kernel_sock_shutdown(s, SHUT_RDWR);
}
EXPORT_SYMBOL_GPL(rt_sock_shutdown);

void rt_sock_release(struct socket *s)
{
	sock_release(s);
}
EXPORT_SYMBOL_GPL(rt_sock_release);

u32 rt_crc32c(u32 crc, const void *p, size_t len)
{
	return crc32c(crc, p, len);
}
EXPORT_SYMBOL_GPL(rt_crc32c);

void *rt_shash_alloc(const char *name)
{
	return crypto_alloc_shash(name, 0, 0);
}
EXPORT_SYMBOL_GPL(rt_shash_alloc);

unsigned int rt_shash_digestsize(void *tfm)
{
	return crypto_shash_digestsize(tfm);
}
EXPORT_SYMBOL_GPL(rt_shash_digestsize);

int rt_shash_digest(void *opaque, const void *const *bufs, const size_t *lens,
		    unsigned int n, u8 *out)
{
	struct crypto_shash *tfm = opaque;
	SHASH_DESC_ON_STACK(desc, tfm);
	unsigned int i;
	int ret;

	desc->tfm = tfm;
	ret = crypto_shash_init(desc);
	for (i = 0; !ret && i < n; i++)
		ret = crypto_shash_update(desc, bufs[i], lens[i]);
	if (!ret)
		ret = crypto_shash_final(desc, out);
	shash_desc_zero(desc);
	return ret;
}
EXPORT_SYMBOL_GPL(rt_shash_digest);

void rt_shash_free(void *tfm)
{
	crypto_free_shash(tfm);
}
EXPORT_SYMBOL_GPL(rt_shash_free);

int rt_md5_digest(const void *const *bufs, const size_t *lens, unsigned int n, u8 *out)
{
#if IS_REACHABLE(CONFIG_CRYPTO_LIB_MD5)
	struct md5_ctx ctx;
	unsigned int i;

	md5_init(&ctx);
	for (i = 0; i < n; i++)
		md5_update(&ctx, bufs[i], lens[i]);
	md5_final(&ctx, out);
	return 0;
#else
	return -ENOENT;
#endif
}
EXPORT_SYMBOL_GPL(rt_md5_digest);

void rt_random_bytes(void *buf, size_t len)
{
	get_random_bytes(buf, len);
}
EXPORT_SYMBOL_GPL(rt_random_bytes);

struct task_struct *rt_kthread_run(int (*fn)(void *data), void *data, const char *name)
{
	struct task_struct *t = kthread_create(fn, data, "%s", name);

	if (IS_ERR(t))
		return t;
	get_task_struct(t);
	wake_up_process(t);
	return t;
}
EXPORT_SYMBOL_GPL(rt_kthread_run);

int rt_kthread_stop(struct task_struct *t)
{
	return kthread_stop_put(t);
}
EXPORT_SYMBOL_GPL(rt_kthread_stop);

bool rt_kthread_should_stop(void)
{
	return kthread_should_stop();
}
EXPORT_SYMBOL_GPL(rt_kthread_should_stop);

/* The n-th online CPU, counted round the online ones. */
unsigned int rt_online_cpu(unsigned int n)
{
	unsigned int cpu;

	cpus_read_lock();
	cpu = cpumask_nth(n % num_online_cpus(), cpu_online_mask);
	cpus_read_unlock();
	return cpu;
}
EXPORT_SYMBOL_GPL(rt_online_cpu);

/* Keeps the current thread on `cpu` (any CPU again if it goes offline). */
int rt_pin_current(unsigned int cpu)
{
	return set_cpus_allowed_ptr(current, cpumask_of(cpu));
}
EXPORT_SYMBOL_GPL(rt_pin_current);
