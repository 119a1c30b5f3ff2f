# Shared by every test firmware: the memory map, the exception vectors, the
# call records and the hcall / RTAS macros.
#
# QEMU's pseries machine loads `-bios FILE` at address 0 and starts the boot
# CPU at 0x100 in real mode, big-endian, MSR[PR]=0 [hw/ppc/spapr.c,
# spapr_machine_reset; spapr_cpu_set_entry_state], so `sc 1` is an hcall:
# opcode in r3, arguments in r4..r12, return code in r3 and outputs in
# r4..r12; registers a handler does not write keep their value
# [hw/ppc/spapr.c, emulate_spapr_hypercall: args = &env->gpr[4]].
#
# Memory map (all below 4 MiB, inside the RMA and below the tree and RTAS
# blob QEMU places at its top):
#   0x000000  vectors, then the code (linked at 0 by fw.ld)
#   0x010000  CTL: the control block the test runner reads through QMP
#   0x020000  SCRATCH: buffers handed to the hypervisor (stats, RTAS args)
#   0x100000  RECORDS: one 320-byte record per call
#   0x200000  BUFFERS: copies of what the hypervisor wrote (work areas, events)

        .set CTL,      0x10000
        .set SCRATCH,  0x20000
        .set RECORDS,  0x100000
        .set BUFFERS,  0x200000

# The control block (u64 each).
        .set CTL_DONE,    0x00   # DONE_MAGIC once the firmware reached its end
        .set CTL_COUNT,   0x08   # records written
        .set CTL_STAGE,   0x10   # handshake with the runner (see each firmware)
        .set CTL_TRAP,    0x18   # vector of an unexpected interrupt, else 0
        .set CTL_SRR0,    0x20
        .set CTL_SRR1,    0x28
        .set CTL_BUFEND,  0x30   # first free byte of BUFFERS
        .set CTL_PREBUF,  0x38   # PRE_BUF's copy for the next record, or 0
        .set CTL_PRELEN,  0x40
        .set CTL_PREADDR, 0x48
        .set CTL_FDT,     0x50   # r3 at entry: the tree QEMU built [spapr_machine_reset]
        .set CTL_USER,    0x80   # firmware-specific words from here on
        .set DONE_MAGIC,  0x600DF00D

# A record (u64 words; the runner's records.py reads the same layout).
        .set R_KIND,   0x00    # 1 hcall, 2 RTAS
        .set R_DESC,   0x08    # address of the description (NUL-terminated)
        .set R_EXPECT, 0x10    # address of the expected answer (QEMU's), or 0
        .set R_PAPR,   0x18    # address of the papr profile's expected answer, or 0
        .set R_FLAGS,  0x20    # F_* below
        .set R_POLLS,  0x28    # polls before this answer (volatile: not compared)
        .set R_IN,     0x30    # r3..r12 before the call (10 words)
        .set R_OUT,    0x80    # r3..r12 after the call (10 words)
        .set R_BUF,    0xd0    # address of a copy in BUFFERS, or 0
        .set R_BUFLEN, 0xd8    # its length
        .set R_RTAS,   0xe0    # RTAS: the argument buffer after the call (64 bytes)
        .set R_PREBUF, 0x120   # a copy of a buffer as it was before the call, or 0
        .set R_PRELEN, 0x128
        .set R_PREADDR, 0x130  # where that buffer is in guest memory
        .set R_BUFADDR, 0x138  # where R_BUF's buffer is in guest memory
        .set R_SIZE,   0x140
        .set F_EVENT,  1       # R_BUF holds an RTAS event log
        .set F_WORKAREA, 2     # R_BUF holds a configure-connector work area

        .include "papr.inc"

# PMEM DRC indexes: type shift 9 << 28 | slot [QEMU spapr_drc.h].
        .set DRC0, 0x90000000
        .set DRC1, 0x90000001
        .set DRC2, 0x90000002
        .set DRC3, 0x90000003

# Registers the macros own: r31 next record, r30 description, r29 expected
# answer, r28 papr answer, r27 flags, r26 scratch. r14..r25 are the
# firmware's.

# LA reg, symbol: an address in the blob (linked at 0, below 2 GiB).
        .macro LA reg, sym
        lis     \reg, \sym@ha
        addi    \reg, \reg, \sym@l
        .endm

# STR reg, "text": reg = address of a NUL-terminated copy of text ("" gives 0).
        .macro STR reg, text
        .ifc "\text",""
        li      \reg, 0
        .else
        .pushsection .rodata
.Lstr\@: .asciz "\text"
        .popsection
        LA      \reg, .Lstr\@
        .endif
        .endm

# Values of the registers a call does not take: each names its register, so
# a handler that writes a register it should not shows up in the compare.
        .set FILL, 0x5C5C5C5C5C5C5C00

# HCALL "description", opcode, r4..r12, expect="…", papr="…", flags=0
# Issues the hcall and records r3..r12 before and after it. `expect` is
# QEMU's answer (the qemu profile's): the return code and every output
# register; any register it does not name must keep its input. `papr` is
# the papr profile's answer where the test asserts one.
        .macro HCALL desc, op, a4=FILL+4, a5=FILL+5, a6=FILL+6, a7=FILL+7, a8=FILL+8, a9=FILL+9, a10=FILL+10, a11=FILL+11, a12=FILL+12, expect="", papr="", flags=0
        STR     %r30, "\desc"
        STR     %r29, "\expect"
        STR     %r28, "\papr"
        li      %r27, \flags
        li      %r0, 1
        LI64    %r3, \op
        LI64    %r4, \a4
        LI64    %r5, \a5
        LI64    %r6, \a6
        LI64    %r7, \a7
        LI64    %r8, \a8
        LI64    %r9, \a9
        LI64    %r10, \a10
        LI64    %r11, \a11
        LI64    %r12, \a12
        bl      record_in
        sc      1
        bl      record_out
        .endm

# RTAS "description", token, nret, args..., expect="…", papr="…", flags=0
# An RTAS call as Linux's enter_rtas makes it: KVMPPC_H_RTAS with r4 = the
# argument buffer {token, nargs, nret, args[nargs], rets[nret]} (big-endian
# words) [QEMU hw/ppc/spapr_rtas.c, h_rtas / spapr_rtas_call]. Return words
# are preset to 0xdeadbeef, so a return the service does not write shows.
# `expect` names the return words: "0 1" is rets[0]=0, rets[1]=1.
        .macro RTAS desc, token, nret, args:vararg
        RTAS_CALL "\desc", \token, \nret, "", "", 0, \args
        .endm
        .macro RTAS_CALL desc, token, nret, expect, papr, flags, args:vararg
        STR     %r30, "\desc"
        STR     %r29, "\expect"
        STR     %r28, "\papr"
        li      %r27, \flags
        LI64    %r26, SCRATCH
        LI64    %r3, \token
        stw     %r3, 0(%r26)
        li      %r3, \nret
        stw     %r3, 8(%r26)
        li      %r4, 12
        .irp    a, \args
        LI64    %r3, \a
        stwx    %r3, %r26, %r4
        addi    %r4, %r4, 4
        .endr
        addi    %r3, %r4, -12
        srdi    %r3, %r3, 2
        stw     %r3, 4(%r26)          # nargs
        li      %r3, \nret
        LI64    %r5, 0xdeadbeef
1:      stwx    %r5, %r26, %r4
        addi    %r4, %r4, 4
        addic.  %r3, %r3, -1
        bgt     1b
        li      %r0, 2
        LI64    %r3, KVMPPC_H_RTAS
        mr      %r4, %r26
        li      %r5, 0
        li      %r6, 0
        li      %r7, 0
        li      %r8, 0
        li      %r9, 0
        li      %r10, 0
        li      %r11, 0
        li      %r12, 0
        bl      record_in
        sc      1
        bl      record_out
        .endm

# RTAS_X: RTAS with its expected return words (and the papr profile's).
        .macro RTAS_X desc, token, nret, expect, papr, flags, args:vararg
        RTAS_CALL "\desc", \token, \nret, "\expect", "\papr", \flags, \args
        .endm

# COPY_BUF addr, len: copy len bytes at addr into BUFFERS and point the
# last record at the copy (the buffer after the call).
        .macro COPY_BUF addr, len
        LI64    %r3, \addr
        LI64    %r4, \len
        bl      copy_buf
        .endm

# PRE_BUF addr, len: the same for the next call's record, before the call
# (what the hypervisor will read).
        .macro PRE_BUF addr, len
        LI64    %r3, \addr
        LI64    %r4, \len
        bl      copy_pre
        .endm

# DONE: the end marker the runner waits for.
        .macro DONE
        LI64    %r3, CTL
        LI64    %r4, DONE_MAGIC
        std     %r4, CTL_DONE(%r3)
1:      b       1b
        .endm

# STAGE n: tell the runner the firmware reached stage n (the runner polls
# CTL_STAGE; the firmware goes on by itself).
        .macro STAGE n
        LI64    %r3, CTL
        li      %r4, \n
        std     %r4, CTL_STAGE(%r3)
        .endm

# ---------------------------------------------------------------------------
        .section .text
        .globl  _start
        .org    0
        .long   0                     # address 0: nothing runs here

# 0x100 (system reset) is the entry point; r3 holds the address of the
# device tree QEMU built [spapr.c, spapr_machine_reset:
# spapr_cpu_set_entry_state(cpu, SPAPR_ENTRY_POINT, 0, fdt_addr, 0)].
        .org    0x100
_start:
        lis     %r4, CTL@ha
        std     %r3, CTL_FDT(%r4)
        b       main

# Every other vector records itself and stops: an unexpected interrupt is a
# failure the runner reports with SRR0/SRR1.
        .macro VECTOR v
        .org    \v
        mtsprg  0, %r3
        li      %r3, \v
        b       trap
        .endm
        VECTOR 0x200
        VECTOR 0x300
        VECTOR 0x380
        VECTOR 0x400
        VECTOR 0x480
        VECTOR 0x500
        VECTOR 0x600
        .ifdef  OWN_PROGRAM_CHECK
        .org    0x700
        b       program_check         # the firmware's own handler
        .else
        VECTOR 0x700
        .endif
        VECTOR 0x800
        VECTOR 0x900
        VECTOR 0x980
        VECTOR 0xa00
        VECTOR 0xb00
        VECTOR 0xc00
        VECTOR 0xd00
        VECTOR 0xe00
        VECTOR 0xf00
        VECTOR 0xf20
        VECTOR 0xf40
        VECTOR 0x1500

        .org    0x1600
trap:
        mtsprg  1, %r4
        LI64    %r4, CTL
        std     %r3, CTL_TRAP(%r4)
        mfsrr0  %r3
        std     %r3, CTL_SRR0(%r4)
        mfsrr1  %r3
        std     %r3, CTL_SRR1(%r4)
1:      b       1b

# record_in: start the record at r31 with r0 (kind), r27..r30 and the inputs
# r3..r12. Clobbers r0 and r26.
record_in:
        std     %r0, R_KIND(%r31)
        std     %r30, R_DESC(%r31)
        std     %r29, R_EXPECT(%r31)
        std     %r28, R_PAPR(%r31)
        std     %r27, R_FLAGS(%r31)
        li      %r26, 0
        std     %r26, R_POLLS(%r31)
        std     %r26, R_BUF(%r31)
        std     %r26, R_BUFLEN(%r31)
        LI64    %r26, CTL                     # PRE_BUF's copy, once
        ld      %r0, CTL_PREBUF(%r26)
        std     %r0, R_PREBUF(%r31)
        ld      %r0, CTL_PRELEN(%r26)
        std     %r0, R_PRELEN(%r31)
        ld      %r0, CTL_PREADDR(%r26)
        std     %r0, R_PREADDR(%r31)
        li      %r0, 0
        std     %r0, CTL_PREBUF(%r26)
        std     %r0, CTL_PRELEN(%r26)
        std     %r0, CTL_PREADDR(%r26)
        std     %r3,  R_IN+0x00(%r31)
        std     %r4,  R_IN+0x08(%r31)
        std     %r5,  R_IN+0x10(%r31)
        std     %r6,  R_IN+0x18(%r31)
        std     %r7,  R_IN+0x20(%r31)
        std     %r8,  R_IN+0x28(%r31)
        std     %r9,  R_IN+0x30(%r31)
        std     %r10, R_IN+0x38(%r31)
        std     %r11, R_IN+0x40(%r31)
        std     %r12, R_IN+0x48(%r31)
        blr

# record_out: finish the record with r3..r12 (and the RTAS buffer for an
# RTAS record), count it and move r31 on. Keeps r3..r12; clobbers r0,
# r26, r27.
record_out:
        std     %r3,  R_OUT+0x00(%r31)
        std     %r4,  R_OUT+0x08(%r31)
        std     %r5,  R_OUT+0x10(%r31)
        std     %r6,  R_OUT+0x18(%r31)
        std     %r7,  R_OUT+0x20(%r31)
        std     %r8,  R_OUT+0x28(%r31)
        std     %r9,  R_OUT+0x30(%r31)
        std     %r10, R_OUT+0x38(%r31)
        std     %r11, R_OUT+0x40(%r31)
        std     %r12, R_OUT+0x48(%r31)
        ld      %r26, R_KIND(%r31)
        cmpdi   %r26, 2
        bne     1f
        LI64    %r26, SCRATCH
        ld      %r0, 0(%r26)
        std     %r0, R_RTAS+0x00(%r31)
        ld      %r0, 8(%r26)
        std     %r0, R_RTAS+0x08(%r31)
        ld      %r0, 16(%r26)
        std     %r0, R_RTAS+0x10(%r31)
        ld      %r0, 24(%r26)
        std     %r0, R_RTAS+0x18(%r31)
        ld      %r0, 32(%r26)
        std     %r0, R_RTAS+0x20(%r31)
        ld      %r0, 40(%r26)
        std     %r0, R_RTAS+0x28(%r31)
        ld      %r0, 48(%r26)
        std     %r0, R_RTAS+0x30(%r31)
        ld      %r0, 56(%r26)
        std     %r0, R_RTAS+0x38(%r31)
1:      addi    %r31, %r31, R_SIZE
        LI64    %r26, CTL
        ld      %r27, CTL_COUNT(%r26)    # r27 (flags) is in the record already
        addi    %r27, %r27, 1
        std     %r27, CTL_COUNT(%r26)
        blr

# copy_pre: copy r4 bytes (a multiple of 8) from r3 to the end of BUFFERS
# for the next record (CTL_PREBUF).
copy_pre:
        LI64    %r26, CTL
        ld      %r5, CTL_BUFEND(%r26)
        std     %r5, CTL_PREBUF(%r26)
        std     %r4, CTL_PRELEN(%r26)
        std     %r3, CTL_PREADDR(%r26)
        b       copy

# copy_buf: copy r4 bytes (a multiple of 8) from r3 to the end of BUFFERS,
# and point the last record (r31 - R_SIZE) at the copy.
copy_buf:
        LI64    %r26, CTL
        ld      %r5, CTL_BUFEND(%r26)
        std     %r5, R_BUF-R_SIZE(%r31)
        std     %r4, R_BUFLEN-R_SIZE(%r31)
        std     %r3, R_BUFADDR-R_SIZE(%r31)
copy:
        srdi    %r6, %r4, 3
        mtctr   %r6
        addi    %r3, %r3, -8
        addi    %r7, %r5, -8
1:      ldu     %r0, 8(%r3)
        stdu    %r0, 8(%r7)
        bdnz    1b
        add     %r5, %r5, %r4
        std     %r5, CTL_BUFEND(%r26)
        blr

# init: the record pointer and the buffer area.
init:
        LI64    %r31, RECORDS
        LI64    %r26, CTL
        LI64    %r3, BUFFERS
        std     %r3, CTL_BUFEND(%r26)
        blr
