# hcall-cost.S: each SCM hcall issued many times in a row, in windows the
# runner (qemu/bench/cost.py) counts with callgrind.
#
# QEMU's pseries loads `-bios FILE` at 0 and starts the boot CPU at 0x100 in
# real mode, big-endian, so `sc 1` is an hcall: opcode in r3, arguments in
# r4..r12, status back in r3 [hw/ppc/spapr.c, spapr_machine_reset;
# hw/ppc/spapr_hcall.c, spapr_hypercall].
#
# Windows: a MARK (H_PUT_TERM_CHAR of no characters to the spapr-vty at
# VTY) closes each one. The runner runs QEMU under callgrind with
# --toggle-collect=spapr_hypercall --dump-before=h_put_term_char
# --dump-after=h_put_term_char, so every window's hcalls land in a dump of
# their own, and a window with no call in it measures the part of the two
# MARKs' spapr_hypercall that falls outside h_put_term_char (subtracted
# from every window). MARK also stores the r3 and r4 of the window's last
# call at RESULTS; after the last window they are printed on the console,
# one line a window, for the runner to check, and RTAS power-off ends QEMU.
#
# The window order is cost.py's WINDOWS; change both together.
#
# --defsym: DRC (the device every call names: the last one), N (calls per
# counted window), PAIRS (bind + unbind-all pairs), FLUSHES (flushes
# started and polled to completion).

        .ifndef DRC
        .set DRC, 0x90000000
        .endif
        .ifndef N
        .set N, 200
        .endif
        .ifndef PAIRS
        .set PAIRS, 50
        .endif
        .ifndef FLUSHES
        .set FLUSHES, 10
        .endif

        .set VTY,      0x71000001
        .set RESULTS,  0x10000       # 16 bytes a window: r3, r4
        .set STATS,    0x20000       # the PERFORMANCE_STATS buffer
        .set RTASBUF,  0x30000

        .include "papr.inc"         # opcodes, LI64 [tests/qemu/fw]
        .set H_UNBIND_SCOPE_DRC,              2
        # QEMU's own token numbering [include/hw/ppc/spapr.h].
        .set RTAS_POWER_OFF,                  0x2003

# r20: the next RESULTS slot; r22: the address BIND_MEM answered (r5).

# HC op, r4, r5, r6, r7, r8: one hcall.
        .macro HC op, a4=0, a5=0, a6=0, a7=0, a8=0
        LI64    %r3, \op
        LI64    %r4, \a4
        LI64    %r5, \a5
        LI64    %r6, \a6
        LI64    %r7, \a7
        LI64    %r8, \a8
        sc      1
        .endm

# REPEAT n, body...: the hcall macro `body` n times.
        .macro TIMES n, op, a4=0, a5=0, a6=0, a7=0, a8=0
        LI64    %r21, \n
1:      HC      \op, \a4, \a5, \a6, \a7, \a8
        addic.  %r21, %r21, -1
        bne     1b
        .endm

# MARK: keep the last call's r3 and r4, close the window.
        .macro MARK
        std     %r3, 0(%r20)
        std     %r4, 8(%r20)
        addi    %r20, %r20, 16
        LI64    %r3, H_PUT_TERM_CHAR
        LI64    %r4, VTY
        li      %r5, 0
        li      %r6, 0
        li      %r7, 0
        sc      1
        .endm

        .section .text
        .globl  _start
        .org    0
        .long   0
        .org    0x100
_start:
        b       main

        # Any other interrupt: print "TRAP" and power off; the runner sees
        # the missing results.
        .irp    v, 0x200, 0x300, 0x380, 0x400, 0x480, 0x500, 0x600, 0x700, 0x800, 0x900, 0x980, 0xa00, 0xb00, 0xc00, 0xd00, 0xe00, 0xf00, 0xf20, 0xf40, 0x1500
        .org    \v
        b       trap
        .endr

        .org    0x1600
trap:
        LI64    %r3, H_PUT_TERM_CHAR
        LI64    %r4, VTY
        li      %r5, 5
        LI64    %r6, 0x545241500a000000     # "TRAP\n"
        li      %r7, 0
        sc      1
        b       power_off

main:
        LI64    %r20, RESULTS
        li      %r3, 0
        li      %r4, 0
        MARK                                # window 0: start-up (ignored)
        # Windows 1-4: empty, the MARKs' own share.
        MARK
        MARK
        MARK
        MARK
        # 5-9: N calls each.
        TIMES   N, H_SCM_READ_METADATA, DRC, 0x1f8, 8
        MARK
        TIMES   N, H_SCM_WRITE_METADATA, DRC, 0x1f8, 0x1122334455667788, 8
        MARK
        TIMES   N, H_SCM_HEALTH, DRC
        MARK
        TIMES   N, H_SCM_PERFORMANCE_STATS, DRC, 0, 0
        MARK
        # PERFORMANCE_STATS of one statistic: the request is copied in
        # before each call (guest code, not an hcall: not counted).
        LI64    %r21, N
2:      bl      stats_request
        HC      H_SCM_PERFORMANCE_STATS, DRC, STATS, 32
        addic.  %r21, %r21, -1
        bne     2b
        MARK
        # PAIRS x (BIND_MEM of the whole device | UNBIND_ALL of its DRC).
        LI64    %r23, PAIRS
3:      HC      H_SCM_BIND_MEM, DRC, 0, 1, -1, 0
        MARK
        HC      H_SCM_UNBIND_ALL, H_UNBIND_SCOPE_DRC, DRC, 0
        MARK
        addic.  %r23, %r23, -1
        bne     3b
        # Bound (set-up window), the two QUERY calls, unbound again.
        HC      H_SCM_BIND_MEM, DRC, 0, 1, -1, 0
        mr      %r22, %r5                   # r5: the address bound [Linux papr_scm drc_pmem_bind]
        MARK
        TIMES   N, H_SCM_QUERY_BLOCK_MEM_BINDING, DRC, 0
        MARK
        LI64    %r21, N
4:      LI64    %r3, H_SCM_QUERY_LOGICAL_MEM_BINDING
        mr      %r4, %r22
        sc      1
        addic.  %r21, %r21, -1
        bne     4b
        MARK
        HC      H_SCM_UNBIND_ALL, H_UNBIND_SCOPE_DRC, DRC, 0
        MARK
        # FLUSHES x (the first H_SCM_FLUSH | its polls to completion).
        LI64    %r23, FLUSHES
5:      HC      H_SCM_FLUSH, DRC, 0
        mr      %r24, %r4                   # the continue token
        MARK
6:      LI64    %r3, H_SCM_FLUSH
        LI64    %r4, DRC
        mr      %r5, %r24
        sc      1
        cmpdi   %r3, H_LONG_BUSY_ORDER_10_MSEC
        beq     6b
        MARK
        addic.  %r23, %r23, -1
        bne     5b

        # The results, one line a window: "RRRRRRRRRRRRRRRR PPPPPPPPPPPPPPPP\n"
        # (r3 and r4 in hex).
        LI64    %r25, RESULTS
        # PUT LEN: H_PUT_TERM_CHAR of the LEN bytes in r6, r7 to the vty.
        .macro PUT len
        LI64    %r3, H_PUT_TERM_CHAR
        LI64    %r4, VTY
        li      %r5, \len
        sc      1
        .endm
7:      cmpld   %r25, %r20
        bge     power_off
        ld      %r3, 0(%r25)
        bl      hex
        PUT     16
        LI64    %r6, 0x2000000000000000     # " "
        PUT     1
        ld      %r3, 8(%r25)
        bl      hex
        PUT     16
        LI64    %r6, 0x0a00000000000000     # "\n"
        PUT     1
        addi    %r25, %r25, 16
        b       7b

power_off:
        LI64    %r9, RTASBUF
        LI64    %r3, RTAS_POWER_OFF
        stw     %r3, 0(%r9)
        li      %r3, 2
        stw     %r3, 4(%r9)                 # nargs
        li      %r3, 1
        stw     %r3, 8(%r9)                 # nret
        li      %r3, 0
        stw     %r3, 12(%r9)
        stw     %r3, 16(%r9)
        LI64    %r3, KVMPPC_H_RTAS
        mr      %r4, %r9
        sc      1
8:      b       8b

# hex: r3 as 16 hex digits in r6 (the first 8) and r7 (the last 8), the
# characters H_PUT_TERM_CHAR takes. Clobbers r0, r8-r12.
hex:
        li      %r6, 0
        li      %r7, 0
        li      %r8, 16
9:      rldicl  %r3, %r3, 4, 0              # the next nibble into the low 4 bits
        andi.   %r9, %r3, 15
        addi    %r9, %r9, 0x30              # '0'
        cmpdi   %r9, 0x39                   # '9'
        ble     10f
        addi    %r9, %r9, 0x27              # 'a' - '9' - 1
10:     cmpdi   %r8, 8
        ble     11f
        sldi    %r6, %r6, 8
        or      %r6, %r6, %r9
        b       12f
11:     sldi    %r7, %r7, 8
        or      %r7, %r7, %r9
12:     addic.  %r8, %r8, -1
        bne     9b
        blr

# stats_request: the PERFORMANCE_STATS request for one statistic at STATS:
# "SCMSTATS", version 1, one statistic, "MemLife ", its value [Linux
# arch/powerpc/platforms/pseries/papr_scm.c, struct papr_scm_perf_stats].
stats_request:
        LI64    %r9, STATS
        LI64    %r10, 0x53434d5354415453    # "SCMSTATS"
        std     %r10, 0(%r9)
        LI64    %r10, 0x0000000100000001    # version 1, one statistic
        std     %r10, 8(%r9)
        LI64    %r10, 0x4d656d4c69666520    # "MemLife "
        std     %r10, 16(%r9)
        li      %r10, 0
        std     %r10, 24(%r9)
        blr
