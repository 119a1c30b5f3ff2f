# hcalls.S: every SCM hcall, good and bad, each recorded with r3..r12 before
# and after it (common.S). run.sh boots it with these devices:
#
#   slot 0  nvdimm        4 blocks at 0x80000000 (RAM 2 GiB: device memory
#                         starts at RAM rounded up to 1 GiB [spapr.c])
#   slot 1  spapr-nvdimm  1 block  at 0xC0000000 (H_SCM_FLUSH works on it)
#   slot 2  nvdimm        1 block  at 0xD0000000, unarmed=on
#   slot 3  empty
#
# `expect` is QEMU's own answer (hw/ppc/spapr_nvdimm.c, the same in 7.2 and
# 10.0 for these calls): the return code and the registers the handler
# writes; every other register keeps its input. `papr` is the papr
# profile's answer where this test asserts one (the `papr` check); the
# calls without one only have to leave QEMU running there.

        .include "common.S"

# One macro per hcall, named after it, arguments in PAPR's order.
        .macro READ_METADATA desc, drc, offset, len, expect="", papr=""
        HCALL "\desc", H_SCM_READ_METADATA, \drc, \offset, \len, expect="\expect", papr="\papr"
        .endm
        .macro WRITE_METADATA desc, drc, offset, data, len, expect="", papr=""
        HCALL "\desc", H_SCM_WRITE_METADATA, \drc, \offset, \data, \len, expect="\expect", papr="\papr"
        .endm
        .macro BIND_MEM desc, drc, start, count, target, token, expect="", papr=""
        HCALL "\desc", H_SCM_BIND_MEM, \drc, \start, \count, \target, \token, expect="\expect", papr="\papr"
        .endm
        .macro UNBIND_MEM desc, drc, addr, count, token, expect="", papr=""
        HCALL "\desc", H_SCM_UNBIND_MEM, \drc, \addr, \count, \token, expect="\expect", papr="\papr"
        .endm
        .macro QUERY_BLOCK desc, drc, block, expect="", papr=""
        HCALL "\desc", H_SCM_QUERY_BLOCK_MEM_BINDING, \drc, \block, expect="\expect", papr="\papr"
        .endm
        .macro QUERY_LOGICAL desc, addr, expect="", papr=""
        HCALL "\desc", H_SCM_QUERY_LOGICAL_MEM_BINDING, \addr, expect="\expect", papr="\papr"
        .endm
        .macro UNBIND_ALL desc, scope, drc, token, expect="", papr=""
        HCALL "\desc", H_SCM_UNBIND_ALL, \scope, \drc, \token, expect="\expect", papr="\papr"
        .endm
        .macro HEALTH desc, drc, expect="", papr=""
        HCALL "\desc", H_SCM_HEALTH, \drc, expect="\expect", papr="\papr"
        .endm
        .macro PERFORMANCE_STATS desc, drc, buf, size, expect="", papr=""
        HCALL "\desc", H_SCM_PERFORMANCE_STATS, \drc, \buf, \size, expect="\expect", papr="\papr"
        .endm
        .macro FLUSH desc, drc, token, expect="", papr=""
        HCALL "\desc", H_SCM_FLUSH, \drc, \token, expect="\expect", papr="\papr"
        .endm

# FLUSH_UNTIL_DONE: a new flush (token 0), then Linux's loop
# [papr_scm.c, papr_scm_pmem_flush]: call again with the token from r4
# while the answer is long-busy. The first call and the last poll are
# recorded; the number of polls (R_POLLS) follows fdatasync's timing and is
# not compared.
        .macro FLUSH_UNTIL_DONE desc, drc, start="", done="", papr_start="", papr_done=""
        FLUSH   "\desc: first call", \drc, 0, expect="\start", papr="\papr_start"
        mr      %r20, %r4                     # the token
        li      %r21, 0                       # polls
        STR     %r30, "\desc: last poll"
        STR     %r29, "\done"
        STR     %r28, "\papr_done"
.Lpoll\@:
        li      %r27, 0
        li      %r0, 1
        LI64    %r3, H_SCM_FLUSH
        LI64    %r4, \drc
        mr      %r5, %r20
        LI64    %r6, FILL+6
        LI64    %r7, FILL+7
        LI64    %r8, FILL+8
        LI64    %r9, FILL+9
        LI64    %r10, FILL+10
        LI64    %r11, FILL+11
        LI64    %r12, FILL+12
        bl      record_in
        sc      1
        cmpdi   %r3, H_LONG_BUSY_ORDER_10_MSEC
        bne     .Ldone\@
        addi    %r21, %r21, 1
        b       .Lpoll\@
.Ldone\@:
        bl      record_out
        std     %r21, R_POLLS-R_SIZE(%r31)
        .endm

# STATS_REQUEST addr, size, ids...: a PERFORMANCE_STATS buffer of `size`
# bytes at addr: 0xA5 everywhere, then the header Linux writes [papr_scm.c,
# drc_pmem_query_stats: "SCMSTATS", version 1, count] and one entry per id
# with the value 0xFFFF_FFFF_FFFF_FFFF (a value the hypervisor writes shows).
# Ids are given without their padding: MemLife is "MemLife ".
# No ids: count 0, "every statistic".
        .macro STATS_REQUEST addr, size, ids:vararg
        .pushsection .rodata
        .balign 8
.Lreq\@:
        .ascii  "SCMSTATS"
        .long   1
        .set    .Ln\@, 0
        .ifnb   \ids
        .irp    id, \ids
        .set    .Ln\@, .Ln\@ + 1
        .endr
        .endif
        .long   .Ln\@
        .ifnb   \ids
        .irp    id, \ids
8:      .ascii  "\id"
        .if     (. - 8b) < 8
        .space  8 - (. - 8b), 0x20    # ids are 8 bytes, space-padded
        .endif
        .quad   -1
        .endr
        .endif
.Lreqend\@:
        .popsection
        LI64    %r3, \addr
        LI64    %r4, \size
        LA      %r5, .Lreq\@
        li      %r6, .Lreqend\@ - .Lreq\@
        bl      put_request
        PRE_BUF \addr, (\size+7)&~7
        .endm

# BUF addr, size: copy the buffer into the last record (compared byte by byte).
        .macro BUF addr, size
        COPY_BUF \addr, \size
        .endm

        .set STATS, SCRATCH + 0x1000

main:
        bl      init

# ---- H_SCM_HEALTH [spapr_nvdimm.c, h_scm_health] --------------------------
# r4 = bitmap, r5 = the bits QEMU knows: only PAPR_PMEM_UNARMED (IBM bit 0).
# The papr profile reports every bit Linux knows (IBM bits 0..10).
        HEALTH "health of slot 0", DRC0, expect="H_SUCCESS r4=0 r5=0x8000000000000000", papr="H_SUCCESS r4=0 r5=0xffe0000000000000"
        HEALTH "health of slot 2 (unarmed=on)", DRC2, expect="H_SUCCESS r4=0x8000000000000000 r5=0x8000000000000000", papr="H_SUCCESS r4=0x8000000000000000 r5=0xffe0000000000000"
        HEALTH "health of the empty slot 3", DRC3, expect="H_PARAMETER", papr="H_PARAMETER"
        HEALTH "health of a DRC past the slots", 0x90000004, expect="H_PARAMETER", papr="H_PARAMETER"
        HEALTH "health of CPU core 0's DRC", 0x10000000, expect="H_PARAMETER", papr="H_PARAMETER"
        # QEMU keeps the DRC index in a uint32_t: the upper half is dropped.
        HEALTH "health of DRC0 with upper bits set", 0xffffffff90000000, expect="H_SUCCESS r4=0 r5=0x8000000000000000", papr="H_PARAMETER"

# ---- H_SCM_WRITE_METADATA [h_scm_write_metadata]: DRC, length (H_P4),
# range (H_P2), data wider than the length (H_P2: QEMU's quirk) -------------
        WRITE_METADATA "write to the empty slot", DRC3, 0, 0, 8, expect="H_PARAMETER"
        WRITE_METADATA "write to an LMB DRC", 0x80000001, 0, 0, 8, expect="H_PARAMETER"
        WRITE_METADATA "write of length 0", DRC0, 0, 0, 0, expect="H_P4"
        WRITE_METADATA "write of length 3", DRC0, 0, 0, 3, expect="H_P4"
        WRITE_METADATA "write of length 9", DRC0, 0, 0, 9, expect="H_P4"
        WRITE_METADATA "write of length 16", DRC0, 0, 0, 16, expect="H_P4"
        WRITE_METADATA "write past the label (128 KiB)", DRC0, 0x1fff9, 0, 8, expect="H_P2"
        WRITE_METADATA "write at offset 128 KiB", DRC0, 0x20000, 0, 1, expect="H_P2"
        WRITE_METADATA "write whose offset + length wraps", DRC0, -4, 0, 8, expect="H_P2"
        WRITE_METADATA "write of 0x100 in 1 byte", DRC0, 0, 0x100, 1, expect="H_P2"
        WRITE_METADATA "write of 0x10000 in 2 bytes", DRC0, 0, 0x10000, 2, expect="H_P2"
        WRITE_METADATA "write of 2^32 in 4 bytes", DRC0, 0, 0x100000000, 4, expect="H_P2"
        # Stored big-endian, len bytes [hw/mem/nvdimm.c via spapr_nvdimm.c].
        WRITE_METADATA "write 8 bytes at 0", DRC0, 0, 0x0102030405060708, 8, expect="H_SUCCESS", papr="H_SUCCESS"
        WRITE_METADATA "write 4 bytes at 8", DRC0, 8, 0xffffffff, 4, expect="H_SUCCESS"
        WRITE_METADATA "write 2 bytes at 0x1fffd", DRC0, 0x1fffd, 0xcdef, 2, expect="H_SUCCESS"
        WRITE_METADATA "write 1 byte at 0x1ffff", DRC0, 0x1ffff, 0xab, 1, expect="H_SUCCESS"
        WRITE_METADATA "write 8 bytes at the last 8", DRC1, 0x1fff8, 0x1122334455667788, 8, expect="H_SUCCESS"
        WRITE_METADATA "write 8 bytes, unaligned", DRC2, 3, 0x8877665544332211, 8, expect="H_SUCCESS"
        WRITE_METADATA "write through DRC0 with upper bits", 0xdeadbeef90000000, 16, 0x5a, 1, expect="H_SUCCESS", papr="H_PARAMETER"

# ---- H_SCM_READ_METADATA [h_scm_read_metadata]: DRC, length (H_P3), range
# (H_P2); r4 = the bytes as a big-endian integer -----------------------------
        READ_METADATA "read from the empty slot", DRC3, 0, 8, expect="H_PARAMETER"
        READ_METADATA "read from a DRC past the slots", 0x90000004, 0, 8, expect="H_PARAMETER"
        READ_METADATA "read of length 0", DRC0, 0, 0, expect="H_P3"
        READ_METADATA "read of length 5", DRC0, 0, 5, expect="H_P3"
        READ_METADATA "read of length -1", DRC0, 0, -1, expect="H_P3"
        READ_METADATA "read past the label", DRC0, 0x1fffc, 8, expect="H_P2"
        READ_METADATA "read whose offset + length wraps", DRC0, -1, 2, expect="H_P2"
        READ_METADATA "read 8 bytes at 0", DRC0, 0, 8, expect="H_SUCCESS r4=0x0102030405060708", papr="H_SUCCESS r4=0x0102030405060708"
        READ_METADATA "read 4 bytes at 4", DRC0, 4, 4, expect="H_SUCCESS r4=0x05060708"
        READ_METADATA "read 2 bytes at 1", DRC0, 1, 2, expect="H_SUCCESS r4=0x0203"
        READ_METADATA "read 1 byte at 7", DRC0, 7, 1, expect="H_SUCCESS r4=0x08"
        READ_METADATA "read 8 bytes at 8", DRC0, 8, 8, expect="H_SUCCESS r4=0xffffffff00000000"
        READ_METADATA "read 8 bytes at 16 (written with upper DRC bits)", DRC0, 16, 8, expect="H_SUCCESS r4=0x5a00000000000000"
        READ_METADATA "read the last 4 bytes", DRC0, 0x1fffc, 4, expect="H_SUCCESS r4=0x00cdefab"
        READ_METADATA "read the last byte", DRC0, 0x1ffff, 1, expect="H_SUCCESS r4=0xab"
        READ_METADATA "read slot 1's last 8 bytes", DRC1, 0x1fff8, 8, expect="H_SUCCESS r4=0x1122334455667788"
        READ_METADATA "read slot 2 unaligned", DRC2, 5, 4, expect="H_SUCCESS r4=0x66554433"
        READ_METADATA "read slot 2 never written", DRC2, 0x100, 8, expect="H_SUCCESS r4=0"

# ---- H_SCM_BIND_MEM [h_scm_bind_mem]: DRC, token (H_P5), target
# (H_OVERLAP), start (H_P2), end (H_P3); r5 = base + start * 256 MiB, r6 = n.
# QEMU keeps no bind state: binding twice succeeds twice. ---------------------
        BIND_MEM "bind the empty slot", DRC3, 0, 1, -1, 0, expect="H_PARAMETER"
        BIND_MEM "bind with a continue token", DRC0, 0, 4, -1, 1, expect="H_P5"
        BIND_MEM "bind with a token and a target", DRC0, 0, 4, 0x80000000, 1, expect="H_P5"
        BIND_MEM "bind at a chosen target", DRC0, 0, 4, 0x80000000, 0, expect="H_OVERLAP"
        BIND_MEM "bind from block 5 of 4", DRC0, 5, 0, -1, 0, expect="H_P2"
        BIND_MEM "bind blocks 2..5 of 4", DRC0, 2, 3, -1, 0, expect="H_P3"
        BIND_MEM "bind whose start + count wraps", DRC0, 1, -1, -1, 0, expect="H_P3"
        BIND_MEM "bind slot 0 whole", DRC0, 0, 4, -1, 0, expect="H_SUCCESS r5=0x80000000 r6=4"
        BIND_MEM "bind slot 0 whole again", DRC0, 0, 4, -1, 0, expect="H_SUCCESS r5=0x80000000 r6=4"
        BIND_MEM "bind blocks 1..2", DRC0, 1, 2, -1, 0, expect="H_SUCCESS r5=0x90000000 r6=2"
        BIND_MEM "bind 0 blocks at the end", DRC0, 4, 0, -1, 0, expect="H_SUCCESS r5=0xc0000000 r6=0"
        BIND_MEM "bind slot 1", DRC1, 0, 1, -1, 0, expect="H_SUCCESS r5=0xc0000000 r6=1"
        BIND_MEM "bind slot 2", DRC2, 0, 1, -1, 0, expect="H_SUCCESS r5=0xd0000000 r6=1"

# ---- H_SCM_UNBIND_MEM [h_scm_unbind_mem]: DRC, token (H_P4), alignment
# (H_P2), count and range (H_P3); r5 = n. (A range that wraps 2^64 aborts
# QEMU 10.x: it is in hostile.S, which runs with papr-scm only.) ------------
        UNBIND_MEM "unbind the empty slot", DRC3, 0x80000000, 4, 0, expect="H_PARAMETER"
        UNBIND_MEM "unbind with a continue token", DRC0, 0x80000000, 4, 1, expect="H_P4"
        UNBIND_MEM "unbind unaligned with a token", DRC0, 0x80001000, 4, 1, expect="H_P4"
        UNBIND_MEM "unbind unaligned", DRC0, 0x80001000, 4, 0, expect="H_P2"
        UNBIND_MEM "unbind 0 blocks", DRC0, 0x80000000, 0, 0, expect="H_P3"
        UNBIND_MEM "unbind 2^36 blocks (n * 256 MiB overflows)", DRC0, 0x80000000, 0x1000000000, 0, expect="H_P3"
        UNBIND_MEM "unbind 5 blocks of 4", DRC0, 0x80000000, 5, 0, expect="H_P3"
        UNBIND_MEM "unbind below the device", DRC0, 0x70000000, 1, 0, expect="H_P3"
        UNBIND_MEM "unbind slot 1's range through slot 0", DRC0, 0xc0000000, 1, 0, expect="H_P3"
        UNBIND_MEM "unbind slot 0 whole", DRC0, 0x80000000, 4, 0, expect="H_SUCCESS r5=4"
        UNBIND_MEM "unbind block 3", DRC0, 0xb0000000, 1, 0, expect="H_SUCCESS r5=1"

# ---- H_SCM_UNBIND_ALL [h_scm_unbind_all]: token first (H_P4), scope DRC
# with a bad DRC (H_P2), other scopes (H_PARAMETER); r5 = blocks ------------
        UNBIND_ALL "unbind-all with a token", 2, DRC0, 1, expect="H_P4"
        UNBIND_ALL "unbind-all, bad scope and a token", 7, DRC0, 1, expect="H_P4"
        UNBIND_ALL "unbind-all of the empty slot", 2, DRC3, 0, expect="H_P2"
        UNBIND_ALL "unbind-all of an LMB DRC", 2, 0x80000000, 0, expect="H_P2"
        UNBIND_ALL "unbind-all, scope 0", 0, DRC0, 0, expect="H_PARAMETER"
        UNBIND_ALL "unbind-all, scope 3", 3, DRC0, 0, expect="H_PARAMETER"
        UNBIND_ALL "unbind-all of slot 0", 2, DRC0, 0, expect="H_SUCCESS r5=4"
        UNBIND_ALL "unbind-all of DRC1 with upper bits", 2, 0xffffffff90000001, 0, expect="H_SUCCESS r5=1"
        # Scope 1 counts every NVDIMM's blocks: 4 + 1 + 1.
        UNBIND_ALL "unbind-all, every device", 1, 0, 0, expect="H_SUCCESS r5=6"
        UNBIND_ALL "unbind-all, every device (DRC ignored)", 1, DRC3, 0, expect="H_SUCCESS r5=6"

# ---- H_SCM_FLUSH [h_scm_flush]: DRC, device type, then the async state
# machine: 9901 with r4 = a per-device token from 1, H_SUCCESS when done,
# H_P2 for a token it does not hold ------------------------------------------
        FLUSH "flush the empty slot", DRC3, 0, expect="H_PARAMETER"
        FLUSH "flush a plain nvdimm", DRC0, 0, expect="H_PARAMETER"
        FLUSH "flush slot 1 with an unknown token", DRC1, 0x1234, expect="H_P2"
        FLUSH_UNTIL_DONE "flush slot 1", DRC1, start="H_LONG_BUSY_ORDER_10_MSEC r4=1", done="H_SUCCESS"
        FLUSH "flush slot 1 with the finished token", DRC1, 1, expect="H_P2"
        FLUSH_UNTIL_DONE "flush slot 1 again", DRC1, start="H_LONG_BUSY_ORDER_10_MSEC r4=2", done="H_SUCCESS"

# ---- The calls QEMU does not implement: H_FUNCTION from the dispatcher
# [spapr_hcall.c, spapr_hypercall], no register written. The papr profile
# answers them (papr-profile.txt in hcalls/ holds the same cases). ----------
        UNBIND_ALL "papr: start from nothing bound", 1, 0, 0, expect="H_SUCCESS r5=6"
        BIND_MEM "papr: bind slot 0 whole", DRC0, 0, 4, -1, 0, expect="H_SUCCESS r5=0x80000000 r6=4", papr="H_SUCCESS r4=0 r5=0x80000000 r6=4"
        # Binding is stateful in PAPR: a bound block cannot be bound again.
        BIND_MEM "papr: bind block 3 again", DRC0, 3, 1, -1, 0, expect="H_SUCCESS r5=0xb0000000 r6=1", papr="H_OVERLAP"
        QUERY_BLOCK "papr: query block 0", DRC0, 0, expect="H_FUNCTION", papr="H_SUCCESS r4=0x80000000"
        QUERY_BLOCK "papr: query block 3", DRC0, 3, expect="H_FUNCTION", papr="H_SUCCESS r4=0xb0000000"
        QUERY_BLOCK "papr: query block 4 of 4", DRC0, 4, expect="H_FUNCTION", papr="H_P2"
        QUERY_BLOCK "papr: query an unbound block", DRC1, 0, expect="H_FUNCTION", papr="H_NOT_FOUND"
        QUERY_BLOCK "papr: query the empty slot", DRC3, 0, expect="H_FUNCTION", papr="H_PARAMETER"
        QUERY_LOGICAL "papr: query 0x80000000", 0x80000000, expect="H_FUNCTION", papr="H_SUCCESS r4=0x90000000 r5=0"
        QUERY_LOGICAL "papr: query inside block 3", 0xb7654321, expect="H_FUNCTION", papr="H_SUCCESS r4=0x90000000 r5=3"
        QUERY_LOGICAL "papr: query slot 1 (unbound)", 0xc0000000, expect="H_FUNCTION", papr="H_NOT_FOUND"
        QUERY_LOGICAL "papr: query address 0", 0, expect="H_FUNCTION", papr="H_NOT_FOUND"
        UNBIND_MEM "papr: unbind block 1", DRC0, 0x90000000, 1, 0, expect="H_SUCCESS r5=1", papr="H_SUCCESS r5=1"
        QUERY_BLOCK "papr: query the unbound block 1", DRC0, 1, expect="H_FUNCTION", papr="H_NOT_FOUND"
        QUERY_LOGICAL "papr: query inside the unbound block 1", 0x90000010, expect="H_FUNCTION", papr="H_NOT_FOUND"
        UNBIND_ALL "papr: unbind-all of slot 0 (3 bound)", 2, DRC0, 0, expect="H_SUCCESS r5=4", papr="H_SUCCESS r4=0 r5=3"

# H_SCM_PERFORMANCE_STATS: (drc, 0, 0) asks for the size of every statistic:
# 16 header bytes + 16 x 16 entries = 0x110 [Linux papr_scm.c,
# drc_pmem_query_stats; hcalls/papr-profile.txt]. The buffers are compared
# byte by byte; the papr profile's values are papr-scm's defaults (MemLife
# 100, every other statistic 0).
        PERFORMANCE_STATS "papr: stats size", DRC0, 0, 0, expect="H_FUNCTION", papr="H_SUCCESS r4=0x110"
        PERFORMANCE_STATS "papr: stats of the empty slot", DRC3, 0, 0, expect="H_FUNCTION", papr="H_PARAMETER"
        STATS_REQUEST STATS, 272
        PERFORMANCE_STATS "papr: every statistic", DRC0, STATS, 272, expect="H_FUNCTION", papr="H_SUCCESS stats=CtlResCt:0,CtlResTm:0,PonSecs:0,MemLife:100,CritRscU:0,HostLCnt:0,HostSCnt:0,HostSDur:0,HostLDur:0,MedRCnt:0,MedWCnt:0,MedRDur:0,MedWDur:0,CchRHCnt:0,CchWHCnt:0,FastWCnt:0"
        BUF     STATS, 272
        STATS_REQUEST STATS, 271
        PERFORMANCE_STATS "papr: every statistic in 271 bytes", DRC0, STATS, 271, expect="H_FUNCTION", papr="H_P3"
        BUF     STATS, 272
        STATS_REQUEST STATS, 32, MemLife
        PERFORMANCE_STATS "papr: MemLife alone", DRC0, STATS, 32, expect="H_FUNCTION", papr="H_SUCCESS stats=MemLife:100"
        BUF     STATS, 48
        STATS_REQUEST STATS, 48, CtlResCt, MemLife
        PERFORMANCE_STATS "papr: two statistics", DRC0, STATS, 48, expect="H_FUNCTION", papr="H_SUCCESS stats=CtlResCt:0,MemLife:100"
        BUF     STATS, 48
        STATS_REQUEST STATS, 48, FastWCnt, Bogus
        # An unknown id: H_PARTIAL with r4 = that id [papr-profile.txt].
        PERFORMANCE_STATS "papr: an unknown statistic", DRC0, STATS, 48, expect="H_FUNCTION", papr="H_PARTIAL r4=0x426f677573202020"
        BUF     STATS, 48
        PERFORMANCE_STATS "papr: stats into a buffer past RAM", DRC0, 0x100000000, 272, expect="H_FUNCTION", papr="H_P2"
        PERFORMANCE_STATS "papr: stats into a buffer that wraps", DRC0, -16, 272, expect="H_FUNCTION", papr="H_P2"

        DONE

# put_request: fill r4 bytes at r3 with 0xA5, then copy r6 bytes from r5 over
# the start (STATS_REQUEST).
put_request:
        mtctr   %r4
        li      %r7, 0xa5
        addi    %r8, %r3, -1
1:      stbu    %r7, 1(%r8)
        bdnz    1b
        mtctr   %r6
        addi    %r8, %r3, -1
        addi    %r5, %r5, -1
2:      lbzu    %r7, 1(%r5)
        stbu    %r7, 1(%r8)
        bdnz    2b
        blr
