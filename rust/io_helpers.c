// SPDX-License-Identifier: GPL-2.0
/*
 * Backend I/O for rtarget: file-backed (fileio) and block-device-backed (iblock) reads and
 * writes of a command's scatterlist, completed asynchronously through struct rt_io.
 *
 * fileio follows drivers/nvme/target/io-cmd-file.c and drivers/block/loop.c (lo_rw_aio): the
 * scatterlist becomes a bio_vec array (inline for small I/O), an ITER_BVEC iov_iter, and one
 * kiocb passed to ->read_iter/->write_iter. As in loop.c the submitter holds a reference on
 * the I/O until ->*_iter has returned, so io->done() never runs while the file system may still
 * use the iov_iter on our stack, and the bvecs are freed only after both.
 *
 * iblock follows drivers/nvme/target/io-cmd-bdev.c and LIO's target_core_iblock.c: the first
 * bio is embedded in struct rt_io (nvmet's inline_bio) and ended with bio_uninit(), never
 * bio_put(); further bios come from bio_alloc(GFP_NOIO). io->remaining counts the bios in
 * flight plus the submitter's reference; the last one to drop calls io->done().
 *
 * Exported, because generic wrappers in rust/ are instantiated inside fabric modules.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ioprio.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include "io_helpers.h"

static struct workqueue_struct *rt_io_wq;

static void rt_io_work(struct work_struct *work)
{
	struct rt_io *io = container_of(work, struct rt_io, work);

	io->done(io, RT_IO_DEFERRED);
}

void rt_io_init(struct rt_io *io, void (*done)(struct rt_io *io, int err))
{
	memset(io, 0, sizeof(*io));
	io->done = done;
	INIT_WORK(&io->work, rt_io_work);
}
EXPORT_SYMBOL_GPL(rt_io_init);

void rt_io_defer(struct rt_io *io)
{
	queue_work(rt_io_wq, &io->work);
}
EXPORT_SYMBOL_GPL(rt_io_defer);

void rt_io_queue_work(struct work_struct *work)
{
	queue_work(rt_io_wq, work);
}

int rt_io_wq_init(void)
{
	rt_io_wq = alloc_workqueue("rtarget_io", WQ_PERCPU | WQ_MEM_RECLAIM, 0);
	return rt_io_wq ? 0 : -ENOMEM;
}

void rt_io_wq_exit(void)
{
	/* A killed percpu_ref may still have an RCU callback to run that queues its release. */
	rcu_barrier();
	destroy_workqueue(rt_io_wq);
}

/* Records the first error of a submission; later ones are dropped. */
static void rt_io_set_error(struct rt_io *io, int err)
{
	if (unlikely(err))
		cmpxchg(&io->error, 0, err);
}

/* The last reference is gone: undo the submission's state, then hand the I/O back. */
static void rt_io_finish(struct rt_io *io)
{
	if (io->write)
		kiocb_end_write(&io->iocb);
	if (io->bvecs != io->inline_bvecs)
		kfree(io->bvecs);
	io->bvecs = NULL;
	/* atomic_dec_and_test() ordered every rt_io_set_error() before this read. */
	io->done(io, READ_ONCE(io->error));
}

static void rt_io_put(struct rt_io *io)
{
	if (atomic_dec_and_test(&io->remaining))
		rt_io_finish(io);
}

/*
 * Fills @bv with the first @len bytes of @sgl (zero-length entries skipped); returns the
 * number of bvecs used, or -EINVAL if the list holds fewer than @len bytes. @bv has room for
 * @nents entries.
 */
static int rt_io_map_sg(struct bio_vec *bv, struct scatterlist *sgl, unsigned int nents,
			size_t len)
{
	struct scatterlist *sg;
	unsigned int i, nr = 0;
	size_t left = len;

	for_each_sg(sgl, sg, nents, i) {
		unsigned int n;

		if (!left)
			break;
		n = min_t(size_t, sg->length, left);
		if (!n)
			continue;
		bvec_set_page(&bv[nr++], sg_page(sg), n, sg->offset);
		left -= n;
	}
	return left ? -EINVAL : nr;
}

/* bvecs for @nents entries: the inline array, or a GFP_NOIO allocation (may sleep). */
static struct bio_vec *rt_io_bvecs(struct bio_vec *inline_bv, unsigned int nents)
{
	if (nents <= RT_IO_INLINE_BVECS)
		return inline_bv;
	return kmalloc_array(nents, sizeof(struct bio_vec), GFP_NOIO);
}

/* --- scatterlist copies ------------------------------------------------------------------- */

size_t rt_io_sg_copy_to_buf(struct scatterlist *sg, unsigned int nents, size_t skip, void *buf,
			    size_t len)
{
	return sg_pcopy_to_buffer(sg, nents, buf, len, skip);
}
EXPORT_SYMBOL_GPL(rt_io_sg_copy_to_buf);

size_t rt_io_sg_copy_from_buf(struct scatterlist *sg, unsigned int nents, size_t skip,
			      const void *buf, size_t len)
{
	return sg_pcopy_from_buffer(sg, nents, buf, len, skip);
}
EXPORT_SYMBOL_GPL(rt_io_sg_copy_from_buf);

size_t rt_io_sg_zero(struct scatterlist *sg, unsigned int nents, size_t skip, size_t len)
{
	return sg_zero_buffer(sg, nents, len, skip);
}
EXPORT_SYMBOL_GPL(rt_io_sg_zero);

/* --- fileio ------------------------------------------------------------------------------- */

/*
 * LIO's fd_configure_device: O_RDWR | O_LARGEFILE, O_CREAT with mode 0600 when asked, and
 * O_DIRECT for direct I/O (do_dentry_open() fails with -EINVAL if the file system lacks
 * FMODE_CAN_ODIRECT). Only regular files and block devices are accepted.
 */
struct file *rt_file_open(const char *path, bool direct, bool create)
{
	int flags = O_RDWR | O_LARGEFILE;
	struct file *f;
	umode_t mode;

	if (direct)
		flags |= O_DIRECT;
	if (create)
		flags |= O_CREAT;
	f = filp_open(path, flags, 0600);
	if (IS_ERR(f))
		return f;
	mode = file_inode(f)->i_mode;
	if (!S_ISREG(mode) && !S_ISBLK(mode)) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	if (!f->f_op->read_iter || !f->f_op->write_iter) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	return f;
}
EXPORT_SYMBOL_GPL(rt_file_open);

/* Grows a regular file shorter than @size to @size (sparse); never shrinks. */
int rt_file_extend(struct file *f, loff_t size)
{
	struct inode *inode = file_inode(f);

	if (!S_ISREG(inode->i_mode) || i_size_read(inode) >= size)
		return 0;
	return vfs_truncate(&f->f_path, size);
}
EXPORT_SYMBOL_GPL(rt_file_extend);

/* ki_complete, or called by the submitter when ->*_iter did not queue. Any context. */
static void rt_file_complete(struct kiocb *iocb, long ret)
{
	struct rt_io *io = container_of(iocb, struct rt_io, iocb);

	if (ret < 0)
		rt_io_set_error(io, ret);
	else if (unlikely((size_t)ret != io->len))
		rt_io_set_error(io, -EIO);
	rt_io_put(io);
}

int rt_file_submit(struct rt_io *io, struct file *f, bool write, loff_t pos, struct scatterlist *sg,
		   unsigned int nents, size_t len, bool fua)
{
	struct kiocb *iocb = &io->iocb;
	struct iov_iter iter;
	ssize_t ret;
	int nr;

	if (unlikely(!len || nents > INT_MAX))
		return -EINVAL;
	io->bvecs = rt_io_bvecs(io->inline_bvecs, nents);
	if (unlikely(!io->bvecs))
		return -ENOMEM;
	nr = rt_io_map_sg(io->bvecs, sg, nents, len);
	if (unlikely(nr < 0)) {
		if (io->bvecs != io->inline_bvecs)
			kfree(io->bvecs);
		io->bvecs = NULL;
		return nr;
	}
	iov_iter_bvec(&iter, write ? ITER_SOURCE : ITER_DEST, io->bvecs, nr, len);

	io->len = len;
	io->error = 0;
	io->write = false;
	/* One reference for the I/O, one for us until ->*_iter has returned (as loop.c). */
	atomic_set(&io->remaining, 2);

	/* f_iocb_flags carries IOCB_DIRECT for an O_DIRECT file. */
	init_sync_kiocb(iocb, f);
	iocb->ki_pos = pos;
	iocb->ki_complete = rt_file_complete;

	if (write) {
		if (fua)
			iocb->ki_flags |= IOCB_DSYNC;
		/* Freeze protection for the whole async write, as fs/aio.c's aio_write. */
		if (S_ISREG(file_inode(f)->i_mode)) {
			kiocb_start_write(iocb);
			io->write = true;
		}
		iocb->ki_flags |= IOCB_WRITE;
		ret = f->f_op->write_iter(iocb, &iter);
	} else {
		ret = f->f_op->read_iter(iocb, &iter);
	}

	if (ret != -EIOCBQUEUED)
		rt_file_complete(iocb, ret);
	rt_io_put(io);
	return 0;
}
EXPORT_SYMBOL_GPL(rt_file_submit);

/*
 * LIO's fd_do_rw plus its FUA handling: vfs_iter_read/vfs_iter_write, then vfs_fsync_range of
 * the written range for a FUA write. A short read of a regular file (past its end) is padded
 * with zeroes; any other short transfer is -EIO.
 */
ssize_t rt_file_rw_sync(struct file *f, bool write, loff_t pos, struct scatterlist *sg,
			unsigned int nents, size_t len, bool fua)
{
	struct bio_vec inline_bv[RT_IO_INLINE_BVECS], *bv;
	struct iov_iter iter;
	loff_t p = pos;
	ssize_t ret;
	int nr;

	if (unlikely(!len || nents > INT_MAX))
		return -EINVAL;
	bv = rt_io_bvecs(inline_bv, nents);
	if (unlikely(!bv))
		return -ENOMEM;
	nr = rt_io_map_sg(bv, sg, nents, len);
	if (unlikely(nr < 0)) {
		ret = nr;
		goto out;
	}
	iov_iter_bvec(&iter, write ? ITER_SOURCE : ITER_DEST, bv, nr, len);

	if (write) {
		ret = vfs_iter_write(f, &iter, &p, 0);
		if (ret >= 0 && (size_t)ret != len)
			ret = -EIO;
		if (ret > 0 && fua) {
			int err = vfs_fsync_range(f, pos, pos + len - 1, 1);

			if (err)
				ret = err;
		}
	} else {
		ret = vfs_iter_read(f, &iter, &p, 0);
		if (ret >= 0 && (size_t)ret < len) {
			if (S_ISBLK(file_inode(f)->i_mode))
				ret = -EIO;
			else
				ret += iov_iter_zero(len - ret, &iter);
		}
	}
out:
	if (bv != inline_bv)
		kfree(bv);
	return ret;
}
EXPORT_SYMBOL_GPL(rt_file_rw_sync);

/* LIO's fd_execute_sync_cache: datasync of [start, end], end inclusive (LLONG_MAX: all). */
int rt_file_fsync_range(struct file *f, loff_t start, loff_t end)
{
	return vfs_fsync_range(f, start, end, 1);
}
EXPORT_SYMBOL_GPL(rt_file_fsync_range);

int rt_file_punch_hole(struct file *f, loff_t off, loff_t len)
{
	return vfs_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}
EXPORT_SYMBOL_GPL(rt_file_punch_hole);

/* SEEK_DATA / SEEK_HOLE, for GET LBA STATUS. */
loff_t rt_file_seek(struct file *f, loff_t off, int whence)
{
	return vfs_llseek(f, off, whence);
}
EXPORT_SYMBOL_GPL(rt_file_seek);

int rt_file_zero_range(struct file *f, loff_t off, loff_t len)
{
	return vfs_fallocate(f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
}
EXPORT_SYMBOL_GPL(rt_file_zero_range);

/* The inode that holds the data: the block device's for a device node (as LIO). */
static struct inode *rt_file_host(struct file *f)
{
	return f->f_mapping->host;
}

bool rt_file_is_blockdev(struct file *f)
{
	return S_ISBLK(rt_file_host(f)->i_mode);
}
EXPORT_SYMBOL_GPL(rt_file_is_blockdev);

loff_t rt_file_size(struct file *f)
{
	struct inode *inode = rt_file_host(f);

	if (S_ISBLK(inode->i_mode))
		return bdev_nr_bytes(I_BDEV(inode));
	return i_size_read(inode);
}
EXPORT_SYMBOL_GPL(rt_file_size);

/* The logical block size of a block device file; 0 for a regular file. */
unsigned int rt_file_logical_block_size(struct file *f)
{
	struct inode *inode = rt_file_host(f);

	if (!S_ISBLK(inode->i_mode))
		return 0;
	return bdev_logical_block_size(I_BDEV(inode));
}
EXPORT_SYMBOL_GPL(rt_file_logical_block_size);

bool rt_file_is_direct(struct file *f)
{
	return f->f_flags & O_DIRECT;
}
EXPORT_SYMBOL_GPL(rt_file_is_direct);

bool rt_file_can_direct(struct file *f)
{
	return f->f_mode & FMODE_CAN_ODIRECT;
}
EXPORT_SYMBOL_GPL(rt_file_can_direct);

void rt_file_close(struct file *f)
{
	fput(f);
}
EXPORT_SYMBOL_GPL(rt_file_close);

/* --- iblock ------------------------------------------------------------------------------- */

/* LIO's iblock_configure_device: read-write unless @readonly; exclusive when @holder. */
struct file *rt_bdev_open(const char *path, bool readonly, void *holder)
{
	blk_mode_t mode = BLK_OPEN_READ;

	if (!readonly)
		mode |= BLK_OPEN_WRITE;
	return bdev_file_open_by_path(path, mode, holder, NULL);
}
EXPORT_SYMBOL_GPL(rt_bdev_open);

struct block_device *rt_bdev_of(struct file *bdev_file)
{
	return file_bdev(bdev_file);
}
EXPORT_SYMBOL_GPL(rt_bdev_of);

/* fput, after yielding an exclusive claim at once (fput itself may be deferred). */
void rt_bdev_close(struct file *bdev_file)
{
	bdev_fput(bdev_file);
}
EXPORT_SYMBOL_GPL(rt_bdev_close);

/* bi_end_io of every bio of an rt_io. Any context. */
static void rt_bio_end_io(struct bio *bio)
{
	struct rt_io *io = bio->bi_private;

	rt_io_set_error(io, blk_status_to_errno(bio->bi_status));
	/* The inline bio is not from a bio_set: uninit it, never bio_put() it (nvmet). */
	if (bio == &io->bio)
		bio_uninit(bio);
	else
		bio_put(bio);
	rt_io_put(io);
}

static void rt_bio_prep(struct rt_io *io, struct bio *bio, sector_t sector)
{
	bio->bi_iter.bi_sector = sector;
	bio->bi_private = io;
	bio->bi_end_io = rt_bio_end_io;
	atomic_inc(&io->remaining);
}

/*
 * A read or write of @len bytes of @sgl at @sector. The first bio is io->bio with the inline
 * bvecs when the list fits, else from bio_alloc; when a bio is full it is submitted and the
 * next one allocated (GFP_NOIO: waits on the mempool, never fails). Writes carry REQ_FUA on
 * every bio and REQ_PREFLUSH on the first. Every bio ends in rt_bio_end_io; an error found
 * after the first bio was set up still ends in io->done(), never in a negative return.
 */
int rt_bdev_submit(struct rt_io *io, struct block_device *bdev, bool write, sector_t sector,
		   struct scatterlist *sgl, unsigned int nents, size_t len, blk_opf_t flags)
{
	unsigned int lbs_mask = bdev_logical_block_size(bdev) - 1;
	unsigned int i, left = nents;
	struct scatterlist *sg;
	struct blk_plug plug;
	size_t mapped = 0;
	struct bio *bio;
	blk_opf_t opf;

	if (unlikely(!len || (len & lbs_mask)))
		return -EINVAL;

	if (write) {
		/* As LIO and nvmet: REQ_SYNC | REQ_IDLE, so WBT does not throttle us. */
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;
		opf |= flags & (REQ_FUA | REQ_PREFLUSH | REQ_ATOMIC);
	} else {
		/* The block layer refuses FUA and PREFLUSH on reads. */
		opf = REQ_OP_READ;
	}

	io->len = len;
	io->error = 0;
	io->write = false;
	io->bvecs = io->inline_bvecs;
	atomic_set(&io->remaining, 1);	/* ours, until every bio is submitted */

	if (nents <= RT_IO_INLINE_BVECS) {
		bio = &io->bio;
		bio_init(bio, bdev, io->inline_bvecs, RT_IO_INLINE_BVECS, opf);
	} else {
		bio = bio_alloc(bdev, bio_max_segs(nents), opf, GFP_NOIO);
		if (unlikely(!bio))
			return -ENOMEM;
	}
	rt_bio_prep(io, bio, sector);

	blk_start_plug(&plug);
	for_each_sg(sgl, sg, nents, i) {
		unsigned int n;

		left--;
		if (mapped == len)
			break;
		n = min_t(size_t, sg->length, len - mapped);
		if (!n)
			continue;
		while (bio_add_page(bio, sg_page(sg), n, sg->offset) != n) {
			/*
			 * An empty bio that refuses the page, a split inside a block, or a
			 * second bio for an atomic write (one bio or nothing).
			 */
			if (unlikely(!bio->bi_vcnt || (mapped & lbs_mask) || (opf & REQ_ATOMIC))) {
				rt_io_set_error(io, -EINVAL);
				bio_endio(bio);
				goto out_plug;
			}
			submit_bio(bio);
			/* The first bio's flush covers every write completed before this one. */
			opf &= ~REQ_PREFLUSH;
			bio = bio_alloc(bdev, bio_max_segs(left + 1), opf, GFP_NOIO);
			if (unlikely(!bio)) {
				rt_io_set_error(io, -ENOMEM);
				goto out_plug;
			}
			rt_bio_prep(io, bio, sector + (mapped >> SECTOR_SHIFT));
		}
		mapped += n;
	}
	if (unlikely(mapped != len)) {
		/* The list holds fewer than len bytes. */
		rt_io_set_error(io, -EINVAL);
		bio_endio(bio);
	} else {
		submit_bio(bio);
	}
out_plug:
	blk_finish_plug(&plug);
	rt_io_put(io);
	return 0;
}
EXPORT_SYMBOL_GPL(rt_bdev_submit);

/* nvmet_bdev_execute_flush: an empty REQ_PREFLUSH write on the inline bio, asynchronous. */
int rt_bdev_flush(struct rt_io *io, struct block_device *bdev)
{
	struct bio *bio = &io->bio;

	io->len = 0;
	io->error = 0;
	io->write = false;
	io->bvecs = io->inline_bvecs;
	atomic_set(&io->remaining, 0);
	bio_init(bio, bdev, io->inline_bvecs, RT_IO_INLINE_BVECS, REQ_OP_WRITE | REQ_PREFLUSH);
	rt_bio_prep(io, bio, 0);
	submit_bio(bio);
	return 0;
}
EXPORT_SYMBOL_GPL(rt_bdev_flush);

int rt_bdev_flush_sync(struct block_device *bdev)
{
	return blkdev_issue_flush(bdev);
}
EXPORT_SYMBOL_GPL(rt_bdev_flush_sync);

struct rt_io_wait {
	struct rt_io io;
	struct completion done;
	int err;
};

static void rt_io_wait_done(struct rt_io *io, int err)
{
	struct rt_io_wait *w = container_of(io, struct rt_io_wait, io);

	w->err = err;
	complete(&w->done);
}

int rt_bdev_write_sync(struct block_device *bdev, sector_t sector, struct scatterlist *sg,
		       unsigned int nents, size_t len)
{
	struct rt_io_wait *w = kmalloc(sizeof(*w), GFP_KERNEL);
	int ret;

	if (!w)
		return -ENOMEM;
	rt_io_init(&w->io, rt_io_wait_done);
	init_completion(&w->done);
	ret = rt_bdev_submit(&w->io, bdev, true, sector, sg, nents, len, 0);
	if (!ret) {
		wait_for_completion(&w->done);
		ret = w->err;
	}
	kfree(w);
	return ret;
}
EXPORT_SYMBOL_GPL(rt_bdev_write_sync);

/* LIO's iblock_execute_unmap. */
int rt_bdev_discard(struct block_device *bdev, sector_t sector, sector_t nr)
{
	return blkdev_issue_discard(bdev, sector, nr, GFP_KERNEL);
}
EXPORT_SYMBOL_GPL(rt_bdev_discard);

/* LIO's iblock_execute_zero_out: zeroes that stay allocated (BLKDEV_ZERO_NOUNMAP). */
int rt_bdev_write_zeroes(struct block_device *bdev, sector_t sector, sector_t nr)
{
	return blkdev_issue_zeroout(bdev, sector, nr, GFP_KERNEL, BLKDEV_ZERO_NOUNMAP);
}
EXPORT_SYMBOL_GPL(rt_bdev_write_zeroes);

/* iblock_configure_device, target_configure_unmap_from_bdev and the iblock_get_* callbacks. */
void rt_bdev_get_limits(struct block_device *bdev, struct rt_bdev_limits *lim)
{
	struct request_queue *q = bdev_get_queue(bdev);
	int align = bdev_alignment_offset(bdev);

	memset(lim, 0, sizeof(*lim));
	lim->nr_sectors = bdev_nr_sectors(bdev);
	lim->logical_block_size = bdev_logical_block_size(bdev);
	lim->physical_block_size = bdev_physical_block_size(bdev);
	lim->max_hw_sectors = queue_max_hw_sectors(q);
	lim->io_min = bdev_io_min(bdev);
	lim->io_opt = bdev_io_opt(bdev);
	lim->alignment_offset = align < 0 ? 0 : align;
	lim->max_discard_sectors = bdev_max_discard_sectors(bdev);
	lim->discard_granularity = bdev_discard_granularity(bdev);
	lim->discard_alignment = bdev_discard_alignment(bdev);
	lim->max_write_zeroes_sectors = bdev_write_zeroes_sectors(bdev);
	if (bdev_can_atomic_write(bdev)) {
		lim->atomic_write_max_bytes = queue_atomic_write_max_bytes(q);
		lim->atomic_write_unit_min_bytes = queue_atomic_write_unit_min_bytes(q);
	}
	lim->nr_requests = q->nr_requests;
	lim->write_cache = bdev_write_cache(bdev);
	lim->fua = bdev_fua(bdev);
	lim->nonrot = !bdev_rot(bdev);
	lim->read_only = bdev_read_only(bdev);
}
EXPORT_SYMBOL_GPL(rt_bdev_get_limits);

void rt_bdev_name(struct block_device *bdev, char *buf, size_t len)
{
	snprintf(buf, len, "%pg", bdev);
}
EXPORT_SYMBOL_GPL(rt_bdev_name);

void rt_bdev_numbers(struct block_device *bdev, u32 *major, u32 *minor)
{
	*major = MAJOR(bdev->bd_dev);
	*minor = MINOR(bdev->bd_dev);
}
EXPORT_SYMBOL_GPL(rt_bdev_numbers);
