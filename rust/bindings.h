/* SPDX-License-Identifier: GPL-2.0 */
/* Headers our own bindgen run covers (../Kbuild). Grows with the SCSI host wrapper. */
#include <scsi/scsi.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_host.h>
#include <scsi/scsi_proto.h>
#include "helpers.h"
#include "io_helpers.h"
#include "net_helpers.h"
