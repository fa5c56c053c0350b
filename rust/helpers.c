// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line copies of static inlines rtarget's Rust code calls. Exported, because generic
 * wrappers in rust/ are instantiated inside fabric modules.
 */
#include <linux/configfs.h>
#include <linux/crc-t10dif.h>
#include <linux/kmod.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/utsname.h>
#include <linux/scatterlist.h>
#include <linux/blk-mq.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_host.h>
#include "helpers.h"
#include "io_helpers.h"

bool rt_try_module_get(struct module *mod)
{
	return try_module_get(mod);
}
EXPORT_SYMBOL_GPL(rt_try_module_get);

void rt_module_put(struct module *mod)
{
	module_put(mod);
}
EXPORT_SYMBOL_GPL(rt_module_put);

const char *rt_uts_release(void)
{
	return init_utsname()->release;
}

const char *rt_uts_machine(void)
{
	return init_utsname()->machine;
}

int rt_request_module(const char *name)
{
	return request_module("%s", name);
}

void rt_configfs_add_default_group(struct config_group *new_group, struct config_group *group)
{
	configfs_add_default_group(new_group, group);
}
EXPORT_SYMBOL_GPL(rt_configfs_add_default_group);

void *rt_shost_priv(struct Scsi_Host *shost)
{
	return shost_priv(shost);
}
EXPORT_SYMBOL_GPL(rt_shost_priv);

int rt_scsi_add_host(struct Scsi_Host *shost)
{
	return scsi_add_host(shost, NULL);
}
EXPORT_SYMBOL_GPL(rt_scsi_add_host);

unsigned int rt_num_possible_cpus(void)
{
	return num_possible_cpus();
}
EXPORT_SYMBOL_GPL(rt_num_possible_cpus);

u32 rt_scsi_bufflen(struct scsi_cmnd *cmd)
{
	return scsi_bufflen(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_bufflen);

void rt_scsi_set_resid(struct scsi_cmnd *cmd, u32 resid)
{
	scsi_set_resid(cmd, resid);
}
EXPORT_SYMBOL_GPL(rt_scsi_set_resid);

struct scatterlist *rt_scsi_sglist(struct scsi_cmnd *cmd)
{
	return scsi_sglist(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_sglist);

unsigned int rt_scsi_sg_count(struct scsi_cmnd *cmd)
{
	return scsi_sg_count(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_sg_count);

u32 rt_scsi_unique_tag(struct scsi_cmnd *cmd)
{
	return blk_mq_unique_tag(scsi_cmd_to_rq(cmd));
}
EXPORT_SYMBOL_GPL(rt_scsi_unique_tag);

void rt_shost_set_may_block(struct Scsi_Host *shost)
{
	shost->queuecommand_may_block = 1;
}
EXPORT_SYMBOL_GPL(rt_shost_set_may_block);

void rt_shost_set_pi(struct Scsi_Host *shost)
{
	scsi_host_set_prot(shost, SHOST_DIF_TYPE1_PROTECTION | SHOST_DIF_TYPE2_PROTECTION |
				  SHOST_DIF_TYPE3_PROTECTION | SHOST_DIX_TYPE1_PROTECTION |
				  SHOST_DIX_TYPE2_PROTECTION | SHOST_DIX_TYPE3_PROTECTION);
	scsi_host_set_guard(shost, SHOST_DIX_GUARD_CRC);
}
EXPORT_SYMBOL_GPL(rt_shost_set_pi);

struct scatterlist *rt_scsi_prot_sglist(struct scsi_cmnd *cmd)
{
	return scsi_prot_sglist(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_prot_sglist);

unsigned int rt_scsi_prot_sg_count(struct scsi_cmnd *cmd)
{
	return scsi_prot_sg_count(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_prot_sg_count);

/* The midlayer maps the integrity sglist without setting prot_sdb->length: sum it. */
u32 rt_scsi_prot_len(struct scsi_cmnd *cmd)
{
	struct scatterlist *sg;
	u32 len = 0;
	int i;

	if (!cmd->prot_sdb)
		return 0;
	for_each_sg(cmd->prot_sdb->table.sgl, sg, cmd->prot_sdb->table.nents, i)
		len += sg->length;
	return len;
}
EXPORT_SYMBOL_GPL(rt_scsi_prot_len);

unsigned char rt_scsi_prot_op(struct scsi_cmnd *cmd)
{
	return scsi_get_prot_op(cmd);
}
EXPORT_SYMBOL_GPL(rt_scsi_prot_op);

u16 rt_crc_t10dif(u16 crc, const u8 *p, size_t len)
{
	return crc_t10dif_update(crc, p, len);
}
EXPORT_SYMBOL_GPL(rt_crc_t10dif);

/* The midlayer timed the command out (its error handler owns it; scsi_done is a no-op). */
bool rt_scsi_cmd_timed_out(struct scsi_cmnd *cmd)
{
	return test_bit(SCMD_STATE_COMPLETE, &cmd->state);
}
EXPORT_SYMBOL_GPL(rt_scsi_cmd_timed_out);

int rt_path_is_dir(const char *path)
{
	struct path p;
	int ret = kern_path(path, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &p);

	if (!ret)
		path_put(&p);
	return ret;
}

/* The owner's Arc is dropped in process context: its drop may sleep (closing a backend). */
static void rt_live_refs_released(struct work_struct *work)
{
	struct rt_live_refs *r = container_of(work, struct rt_live_refs, release_work);
	const void *owner = r->owner;

	r->owner = NULL;
	r->drop_owner(owner);	/* may free r */
}

static void rt_live_refs_release(struct percpu_ref *ref)
{
	struct rt_live_refs *r = container_of(ref, struct rt_live_refs, ref);

	rt_io_queue_work(&r->release_work);
}

int rt_live_refs_init(struct rt_live_refs *r)
{
	r->owner = NULL;
	r->drop_owner = NULL;
	r->killed = 0;
	INIT_WORK(&r->release_work, rt_live_refs_released);
	/* Dead until armed: no reference can be taken before the refs hold the owner. */
	return percpu_ref_init(&r->ref, rt_live_refs_release, PERCPU_REF_INIT_DEAD, GFP_KERNEL);
}
EXPORT_SYMBOL_GPL(rt_live_refs_init);

/* Once: false (and nothing taken) if the refs were armed before. */
bool rt_live_refs_arm(struct rt_live_refs *r, const void *owner, void (*drop_owner)(const void *))
{
	if (cmpxchg(&r->drop_owner, NULL, drop_owner))
		return false;
	r->owner = owner;
	percpu_ref_resurrect(&r->ref);
	return true;
}
EXPORT_SYMBOL_GPL(rt_live_refs_arm);

bool rt_live_refs_tryget(struct rt_live_refs *r)
{
	return percpu_ref_tryget_live(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_tryget);

void rt_live_refs_get(struct rt_live_refs *r)
{
	percpu_ref_get(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_get);

void rt_live_refs_put(struct rt_live_refs *r)
{
	percpu_ref_put(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_put);

/* Once, and only once armed: a second kill, or a kill of refs never armed, does nothing. */
void rt_live_refs_kill(struct rt_live_refs *r)
{
	if (READ_ONCE(r->drop_owner) && !xchg(&r->killed, 1))
		percpu_ref_kill(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_kill);

bool rt_live_refs_is_zero(struct rt_live_refs *r)
{
	return percpu_ref_is_zero(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_is_zero);

/* Waits for a queued release to have dropped the owner's Arc. */
void rt_live_refs_flush(struct rt_live_refs *r)
{
	flush_work(&r->release_work);
}
EXPORT_SYMBOL_GPL(rt_live_refs_flush);

void rt_live_refs_exit(struct rt_live_refs *r)
{
	percpu_ref_exit(&r->ref);
}
EXPORT_SYMBOL_GPL(rt_live_refs_exit);
