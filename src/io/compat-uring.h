/* SPDX-License-Identifier: MIT */
/*
 * compat-uring.h: io_uring opcodes and flags newer than Debian 12's
 * liburing 2.3, from the kernel's UAPI numbers. Each is only ever used
 * after the opcode probe said the running kernel has it, so an old kernel
 * never sees an opcode it would reject.
 */
#ifndef TIDE_COMPAT_URING_H
#define TIDE_COMPAT_URING_H

#include <liburing.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* enum io_uring_op values from include/uapi/linux/io_uring.h (6.x). */
#define TIDE_IORING_OP_READ_MULTISHOT 49 /* 6.7 */
#define TIDE_IORING_OP_WAITID 50         /* 6.7 */
#define TIDE_IORING_OP_FUTEX_WAIT 51     /* 6.7 */
#define TIDE_IORING_OP_FUTEX_WAKE 52     /* 6.7 */
#define TIDE_IORING_OP_BIND 56           /* 6.11 */
#define TIDE_IORING_OP_LISTEN 57         /* 6.11 */

/* Zero-copy send flags (6.2): ask the notification to say whether the
 * kernel copied the data after all (loopback, a device without SG). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#endif /* TIDE_COMPAT_URING_H */
