/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for static inlines and macros that bindgen cannot see. Declared here, defined in
 * helpers.c, and bound by our own bindgen run (see ../Kbuild). Prefix: rt_.
 */
#ifndef RTARGET_HELPERS_H
#define RTARGET_HELPERS_H

/* Full definitions, not forward declarations: bindgen would emit opaque copies of those. */
#include <linux/configfs.h>
#include <linux/module.h>
#include <linux/percpu-refcount.h>
#include <linux/workqueue.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_host.h>

bool rt_try_module_get(struct module *mod);
void rt_module_put(struct module *mod);
const char *rt_uts_release(void);
const char *rt_uts_machine(void);
int rt_request_module(const char *name);
void rt_configfs_add_default_group(struct config_group *new_group, struct config_group *group);

/* SCSI low-level driver side (scsi_host.rs) */
void *rt_shost_priv(struct Scsi_Host *shost);
int rt_scsi_add_host(struct Scsi_Host *shost);
unsigned int rt_num_possible_cpus(void);
u32 rt_scsi_bufflen(struct scsi_cmnd *cmd);
void rt_scsi_set_resid(struct scsi_cmnd *cmd, u32 resid);
struct scatterlist *rt_scsi_sglist(struct scsi_cmnd *cmd);
unsigned int rt_scsi_sg_count(struct scsi_cmnd *cmd);
u32 rt_scsi_unique_tag(struct scsi_cmnd *cmd);
void rt_shost_set_may_block(struct Scsi_Host *shost);
bool rt_scsi_cmd_timed_out(struct scsi_cmnd *cmd);
/* T10-PI: the host carries DIF and DIX types 1-3 with a CRC guard (as tcm_loop) */
void rt_shost_set_pi(struct Scsi_Host *shost);
struct scatterlist *rt_scsi_prot_sglist(struct scsi_cmnd *cmd);
unsigned int rt_scsi_prot_sg_count(struct scsi_cmnd *cmd);
u32 rt_scsi_prot_len(struct scsi_cmnd *cmd);
unsigned char rt_scsi_prot_op(struct scsi_cmnd *cmd);

/* CRC-16/T10-DIF (the kernel's crc library) */
u16 rt_crc_t10dif(u16 crc, const u8 *p, size_t len);

/*
 * Per-CPU references that keep a Rust Arc alive (live_ref.rs): a percpu_ref that starts dead,
 * is armed with the owner's Arc, and once killed and drained drops that Arc from the core's
 * workqueue (process context).
 */
struct rt_live_refs {
	struct percpu_ref ref;
	struct work_struct release_work;
	const void *owner;			/* Arc::into_raw of the owner, held by the refs */
	void (*drop_owner)(const void *owner);
	int killed;
};
int rt_live_refs_init(struct rt_live_refs *r);
bool rt_live_refs_arm(struct rt_live_refs *r, const void *owner, void (*drop_owner)(const void *));
bool rt_live_refs_tryget(struct rt_live_refs *r);
void rt_live_refs_get(struct rt_live_refs *r);
void rt_live_refs_put(struct rt_live_refs *r);
void rt_live_refs_kill(struct rt_live_refs *r);
bool rt_live_refs_is_zero(struct rt_live_refs *r);
void rt_live_refs_flush(struct rt_live_refs *r);
void rt_live_refs_exit(struct rt_live_refs *r);

/* vfs.rs */
int rt_path_is_dir(const char *path);

#endif
