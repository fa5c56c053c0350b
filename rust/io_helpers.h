/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Backend I/O for rtarget's fileio and iblock backends: a file (filp_open) or a block device
 * (bdev_file_open_by_path), fed from a command's scatterlist. Defined in io_helpers.c, bound by
 * our own bindgen run (see ../Kbuild) and wrapped by io.rs. Prefixes: rt_io_, rt_file_, rt_bdev_.
 *
 * Modelled on drivers/nvme/target/io-cmd-file.c, io-cmd-bdev.c, drivers/block/loop.c and LIO's
 * drivers/target/target_core_file.c and target_core_iblock.c.
 */
#ifndef RTARGET_IO_HELPERS_H
#define RTARGET_IO_HELPERS_H

/* Full definitions, not forward declarations: bindgen would emit opaque copies of those. */
#include <linux/bio.h>
#include <linux/blk_types.h>
#include <linux/blkdev.h>
#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/scatterlist.h>
#include <linux/types.h>
#include <linux/workqueue.h>

/* Scatterlist entries mapped without allocating: 32 KiB of 4 KiB pages. */
#define RT_IO_INLINE_BVECS 8

/*
 * One asynchronous I/O of one command, embedded in the command. Initialised once with
 * rt_io_init(); then any number of submissions, one at a time: each calls done() exactly once.
 */
struct rt_io {
	union {
		struct kiocb iocb;	/* fileio */
		struct bio bio;		/* iblock: the first bio, bio_init'ed inline */
	};
	struct bio_vec inline_bvecs[RT_IO_INLINE_BVECS];
	struct bio_vec *bvecs;	/* fileio: inline_bvecs, or kmalloc'd for larger sgls */
	/* Called exactly once per submission, from any context, after the I/O is finished. */
	void (*done)(struct rt_io *io, int err);
	atomic_t remaining;	/* references: I/Os in flight, +1 held by the submitter */
	int error;		/* first error seen (negative errno), 0 if none */
	size_t len;		/* bytes submitted */
	struct work_struct work;	/* rt_io_defer(): done(io, RT_IO_DEFERRED) from rtarget_io_wq */
	bool write;		/* fileio: a write, holding freeze protection (kiocb_start_write) */
};

/* Checked against the Rust layout at compile time (we run bindgen without layout tests). */
enum rt_io_layout {
	RT_IO_SIZE = sizeof(struct rt_io),
	RT_IO_ALIGN = __alignof__(struct rt_io),
};

/* Flags of rt_bdev_submit() (the block layer's REQ_FUA and REQ_PREFLUSH). */
enum rt_bdev_flag {
	RT_BDEV_FUA = REQ_FUA,
	RT_BDEV_PREFLUSH = REQ_PREFLUSH,
	RT_BDEV_ATOMIC = REQ_ATOMIC,
};

/* A block device's limits, as LIO's iblock reads them at configure time. */
struct rt_bdev_limits {
	u64 nr_sectors;			/* capacity, 512-byte sectors (bdev_nr_sectors) */
	u32 logical_block_size;		/* bytes */
	u32 physical_block_size;	/* bytes */
	u32 max_hw_sectors;		/* 512-byte sectors (queue_max_hw_sectors) */
	u32 io_min;			/* bytes */
	u32 io_opt;			/* bytes, 0 if unknown */
	u32 alignment_offset;		/* bytes (bdev_alignment_offset; 0 when misaligned, as LIO) */
	u32 max_discard_sectors;	/* 512-byte sectors, 0: no discard */
	u32 discard_granularity;	/* bytes */
	u32 discard_alignment;		/* bytes */
	u32 max_write_zeroes_sectors;	/* 512-byte sectors, 0: no WRITE ZEROES offload */
	u32 atomic_write_max_bytes;	/* 0 unless bdev_can_atomic_write */
	u32 atomic_write_unit_min_bytes;/* 0 unless bdev_can_atomic_write */
	u32 nr_requests;		/* queue depth (LIO's hw_queue_depth) */
	bool write_cache;		/* volatile write cache enabled (bdev_write_cache) */
	bool fua;			/* FUA supported natively (bdev_fua) */
	bool nonrot;			/* !bdev_rot */
	bool read_only;			/* bdev_read_only */
};

/* done()'s argument when the I/O was a deferral to the workqueue (not an errno). */
#define RT_IO_DEFERRED 1

void rt_io_init(struct rt_io *io, void (*done)(struct rt_io *io, int err));
/* Calls io->done(io, RT_IO_DEFERRED) from the I/O workqueue (process context). */
void rt_io_defer(struct rt_io *io);
/* Queues a work item of the core (live_ref.rs) on the I/O workqueue, drained at unload. */
void rt_io_queue_work(struct work_struct *work);
/* The I/O workqueue (per CPU, WQ_MEM_RECLAIM): created at module load, destroyed at unload. */
int rt_io_wq_init(void);
void rt_io_wq_exit(void);

/* scatterlist copies (a view of the first `len` bytes is the caller's business) */
size_t rt_io_sg_copy_to_buf(struct scatterlist *sg, unsigned int nents, size_t skip, void *buf,
			    size_t len);
size_t rt_io_sg_copy_from_buf(struct scatterlist *sg, unsigned int nents, size_t skip,
			      const void *buf, size_t len);
size_t rt_io_sg_zero(struct scatterlist *sg, unsigned int nents, size_t skip, size_t len);

/* fileio */
struct file *rt_file_open(const char *path, bool direct, bool create);
int rt_file_extend(struct file *f, loff_t size);
int rt_file_submit(struct rt_io *io, struct file *f, bool write, loff_t pos, struct scatterlist *sg,
		   unsigned int nents, size_t len, bool fua);
ssize_t rt_file_rw_sync(struct file *f, bool write, loff_t pos, struct scatterlist *sg,
			unsigned int nents, size_t len, bool fua);
int rt_file_fsync_range(struct file *f, loff_t start, loff_t end);
int rt_file_punch_hole(struct file *f, loff_t off, loff_t len);
loff_t rt_file_seek(struct file *f, loff_t off, int whence);
int rt_file_zero_range(struct file *f, loff_t off, loff_t len);
loff_t rt_file_size(struct file *f);
bool rt_file_is_blockdev(struct file *f);
unsigned int rt_file_logical_block_size(struct file *f);
bool rt_file_is_direct(struct file *f);
bool rt_file_can_direct(struct file *f);
void rt_file_close(struct file *f);

/* iblock */
struct file *rt_bdev_open(const char *path, bool readonly, void *holder);
struct block_device *rt_bdev_of(struct file *bdev_file);
void rt_bdev_close(struct file *bdev_file);
int rt_bdev_submit(struct rt_io *io, struct block_device *bdev, bool write, sector_t sector,
		   struct scatterlist *sg, unsigned int nents, size_t len, blk_opf_t flags);
int rt_bdev_flush(struct rt_io *io, struct block_device *bdev);
int rt_bdev_flush_sync(struct block_device *bdev);
/* rt_bdev_submit() of a write, waited for (process context). */
int rt_bdev_write_sync(struct block_device *bdev, sector_t sector, struct scatterlist *sg,
		       unsigned int nents, size_t len);
int rt_bdev_discard(struct block_device *bdev, sector_t sector, sector_t nr);
int rt_bdev_write_zeroes(struct block_device *bdev, sector_t sector, sector_t nr);
void rt_bdev_get_limits(struct block_device *bdev, struct rt_bdev_limits *lim);
/* The device's name as "%pg" prints it (sdb, dm-0, ram0), NUL-terminated in buf. */
void rt_bdev_name(struct block_device *bdev, char *buf, size_t len);
void rt_bdev_numbers(struct block_device *bdev, u32 *major, u32 *minor);

#endif
