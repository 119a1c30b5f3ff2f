# rtas-hotplug.S: the PMEM RTAS sequence of a hot-plug as Linux runs it
# [arch/powerpc/platforms/pseries/pmem.c, dlpar.c, ras.c], then the release
# sequence of an unplug. run.sh boots it with nvdimm slot 0 cold-plugged and
# slots 1..3 empty; at stage 1 the runner hot-plugs an nvdimm into slot 1
# with QMP device_add, and the firmware, polling check-exception, finds the
# event as Linux's hot-plug interrupt handler would.
#
# RTAS is entered as Linux's enter_rtas does under QEMU: the KVMPPC_H_RTAS
# hcall with the argument buffer (common.S, RTAS). The tokens are QEMU's
# and not fixed by PAPR, so the runner reads them from the tree this very
# machine hands its firmware (fw/tree.S reports its address; node /rtas)
# and passes them with --defsym: TOK_CHECK_EXCEPTION, TOK_EVENT_SCAN,
# TOK_GET_SENSOR_STATE, TOK_SET_INDICATOR, TOK_CONFIGURE_CONNECTOR.
# (Walking the tree in assembly would need an FDT parser here; the runner
# has one in python.)
#
# With --defsym WAIT_UNPLUG=1 (the device-del test) the firmware reaches
# stage 2 after configuring slot 1, waits for the unplug request's event
# (the runner's device_del) and only then releases the connector.
#
# Every return value below is QEMU's [hw/ppc/spapr_drc.c, logical DRCs;
# hw/ppc/spapr_events.c]; RTAS status: 0 success, 1 no errors found,
# -3 parameter error / no such indicator, -9003 not configurable.

        .include "common.S"

        .set EVENT_MASK_EPOW,    0x40000000   # EVENT_CLASS_MASK(EPOW)
        .set EVENT_MASK_HOTPLUG, 0x10000000   # EVENT_CLASS_MASK(HOT_PLUG)
        .set RTAS_VECTOR_EXTERNAL_INTERRUPT, 0x500
        .set ISOLATION_STATE, 9001            # sensor / indicator types
        .set DR_INDICATOR,    9002
        .set ALLOCATION_STATE, 9003           # also DR_ENTITY_SENSE
        .set ISOLATE, 0
        .set UNISOLATE, 1
        .set ALLOC_UNUSABLE, 0
        .set ALLOC_USABLE, 1
        .set CC_COMPLETE, 0                   # configure-connector answers
        .set CC_MORE_MEMORY, 5

        .set WORKAREA, SCRATCH + 0x2000       # 4 KiB, as Linux's rtas_data_buf
        .set EVENTBUF, SCRATCH + 0x4000
        .set EVENTLEN, 2048                   # rtas-error-log-max in QEMU's tree
        .set RET0, SCRATCH + 12               # rets[0] is at 12 + 4 * nargs

# One macro per RTAS service, arguments in PAPR's order.
        .macro GET_SENSOR_STATE desc, type, drc, expect
        RTAS_X  "\desc", TOK_GET_SENSOR_STATE, 2, "\expect", "", 0, \type, \drc
        .endm
        .macro SET_INDICATOR desc, type, drc, state, expect
        RTAS_X  "\desc", TOK_SET_INDICATOR, 1, "\expect", "", 0, \type, \drc, \state
        .endm
        .macro EVENT_SCAN desc, expect
        RTAS_X  "\desc", TOK_EVENT_SCAN, 1, "\expect", "", F_EVENT, 0xffffffff, 0, EVENTBUF, EVENTLEN
        BUF_EVENT
        .endm
        .macro CHECK_EXCEPTION desc, mask, expect
        RTAS_X  "\desc", TOK_CHECK_EXCEPTION, 1, "\expect", "", F_EVENT, RTAS_VECTOR_EXTERNAL_INTERRUPT, 0, \mask, 0, EVENTBUF, EVENTLEN
        .endm
        .macro CONFIGURE_CONNECTOR desc, expect
        RTAS_X  "\desc", TOK_CONFIGURE_CONNECTOR, 1, "\expect", "", F_WORKAREA, WORKAREA, 0
        COPY_BUF WORKAREA, 4096
        .endm
        # The event buffer after the call (QEMU writes the whole event even
        # past the length the guest gave [spapr_events.c, check_exception]).
        .macro BUF_EVENT
        COPY_BUF EVENTBUF, 256
        .endm

# WAIT_EVENT: Linux's ras_hotplug_interrupt calls check-exception with the
# hot-plug class; without CAS (this firmware negotiates nothing) QEMU files
# a hot-plug event under the EPOW class [spapr_events.c,
# rtas_event_log_to_source]. Poll both, hot-plug first, until one answers
# 0; only that call is recorded (the polls are not compared).
        .macro WAIT_EVENT desc
        li      %r21, 0
.Lpoll\@:
        CHECK_EXCEPTION "\desc (hot-plug class)", EVENT_MASK_HOTPLUG, "0"
        LI64    %r3, RET0+4*6
        lwz     %r3, 0(%r3)
        cmpwi   %r3, 0
        beq     .Lgot\@
        bl      unrecord
        CHECK_EXCEPTION "\desc (EPOW class)", EVENT_MASK_EPOW, "0"
        LI64    %r3, RET0+4*6
        lwz     %r3, 0(%r3)
        cmpwi   %r3, 0
        beq     .Lgot\@
        bl      unrecord
        addi    %r21, %r21, 1
        b       .Lpoll\@
.Lgot\@:
        std     %r21, R_POLLS-R_SIZE(%r31)
        BUF_EVENT
        .endm

main:
        bl      init
        LI64    %r3, EVENTBUF                 # a known pattern where events land
        li      %r4, EVENTLEN
        li      %r5, 0xa5
        bl      fill

# ---- before the plug --------------------------------------------------------
        # DR entity sense: 1 present for an attached logical DRC, 2 unusable
        # for an empty one (QEMU reports an empty PMEM slot as 2, not 0).
        GET_SENSOR_STATE "sensor of the cold-plugged slot 0", ALLOCATION_STATE, DRC0, "0 1"
        GET_SENSOR_STATE "sensor of the empty slot 1", ALLOCATION_STATE, DRC1, "0 2"
        GET_SENSOR_STATE "sensor of a DRC past the slots", ALLOCATION_STATE, 0x90000004, "-3 0"
        # Not a PMEM connector: papr-scm passes it to QEMU.
        GET_SENSOR_STATE "sensor of CPU core 0", ALLOCATION_STATE, 0x10000000, "0 1"
        # The DR indicator exists on physical DRCs only.
        SET_INDICATOR "DR indicator of slot 0", DR_INDICATOR, DRC0, 1, "-3"
        SET_INDICATOR "allocate the empty slot 1", ALLOCATION_STATE, DRC1, ALLOC_USABLE, "-3"
        LI64    %r3, WORKAREA
        li      %r4, 4096
        li      %r5, 0
        bl      fill
        LI64    %r3, WORKAREA
        LI64    %r4, DRC1
        stw     %r4, 0(%r3)
        CONFIGURE_CONNECTOR "configure the empty slot 1", "-9003"
        CHECK_EXCEPTION "check-exception, nothing queued", EVENT_MASK_HOTPLUG|EVENT_MASK_EPOW, "1"
        BUF_EVENT
        EVENT_SCAN "event-scan, nothing queued", "1"

# ---- the plug ---------------------------------------------------------------
        STAGE   1                             # the runner: device_add into slot 1
        WAIT_EVENT "check-exception: the hot-plug event"
        CHECK_EXCEPTION "check-exception after the event", EVENT_MASK_HOTPLUG|EVENT_MASK_EPOW, "1"
        BUF_EVENT
        EVENT_SCAN "event-scan after the event", "1"

        # dlpar_acquire_drc: the sensor must read 2, then allocation usable,
        # then unisolate.
        GET_SENSOR_STATE "sensor of the plugged slot 1", ALLOCATION_STATE, DRC1, "0 2"
        CONFIGURE_CONNECTOR "configure slot 1 before allocation", "-9003"
        SET_INDICATOR "unisolate slot 1 before allocation", ISOLATION_STATE, DRC1, UNISOLATE, "-3"
        SET_INDICATOR "allocate slot 1", ALLOCATION_STATE, DRC1, ALLOC_USABLE, "0"
        GET_SENSOR_STATE "sensor of the allocated slot 1", ALLOCATION_STATE, DRC1, "0 1"
        SET_INDICATOR "allocate slot 1 again", ALLOCATION_STATE, DRC1, ALLOC_USABLE, "0"
        SET_INDICATOR "unisolate slot 1", ISOLATION_STATE, DRC1, UNISOLATE, "0"
        SET_INDICATOR "DR indicator of slot 1", DR_INDICATOR, DRC1, 1, "-3"

        # dlpar_configure_connector: call until COMPLETE with the same work
        # area, word 0 the DRC index and word 1 zero the first time; each
        # answer is 2 next child, 3 next property, 4 previous parent.
        LI64    %r3, WORKAREA
        li      %r4, 4096
        li      %r5, 0
        bl      fill
        LI64    %r3, WORKAREA
        LI64    %r4, DRC1
        stw     %r4, 0(%r3)
        li      %r22, 0
3:      CONFIGURE_CONNECTOR "configure slot 1, a step", ""
        LI64    %r3, RET0+4*2
        lwz     %r3, 0(%r3)
        cmpwi   %r3, CC_COMPLETE
        beq     4f
        cmpwi   %r3, 0
        blt     4f                            # an error: the compare shows it
        cmpwi   %r3, CC_MORE_MEMORY
        bge     4f
        addi    %r22, %r22, 1
        cmpwi   %r22, 64
        blt     3b
4:
        GET_SENSOR_STATE "sensor of the configured slot 1", ALLOCATION_STATE, DRC1, "0 1"
        # A configured connector streams its node again from the start
        # [spapr_drc.c, rtas_ibm_configure_connector]: the first step.
        CONFIGURE_CONNECTOR "configure the configured slot 1 again", "2"

        .ifdef  WAIT_UNPLUG
        STAGE   2                             # the runner: device_del of slot 1
        WAIT_EVENT "check-exception: the unplug event"
        .endif

# ---- the release (dlpar_release_drc: sensor 1, isolate, unusable) ----------
        GET_SENSOR_STATE "sensor before the release", ALLOCATION_STATE, DRC1, "0 1"
        SET_INDICATOR "unusable before isolation", ALLOCATION_STATE, DRC1, ALLOC_UNUSABLE, "-3"
        SET_INDICATOR "isolate slot 1", ISOLATION_STATE, DRC1, ISOLATE, "0"
        SET_INDICATOR "isolate slot 1 again", ISOLATION_STATE, DRC1, ISOLATE, "0"
        CONFIGURE_CONNECTOR "configure the isolated slot 1", "-9003"
        SET_INDICATOR "slot 1 unusable", ALLOCATION_STATE, DRC1, ALLOC_UNUSABLE, "0"
        .ifndef WAIT_UNPLUG
        # Without an unplug request the device stays: the sensor reads 2
        # (unusable) and the guest can take the connector again.
        GET_SENSOR_STATE "sensor of the released slot 1", ALLOCATION_STATE, DRC1, "0 2"
        # Unusable when unusable: "nothing to do" [drc_set_unusable].
        SET_INDICATOR "slot 1 unusable again", ALLOCATION_STATE, DRC1, ALLOC_UNUSABLE, "0"
        SET_INDICATOR "allocate slot 1 once more", ALLOCATION_STATE, DRC1, ALLOC_USABLE, "0"
        SET_INDICATOR "and give it back", ALLOCATION_STATE, DRC1, ALLOC_UNUSABLE, "0"
        .endif
        CHECK_EXCEPTION "check-exception at the end", EVENT_MASK_HOTPLUG|EVENT_MASK_EPOW, "1"
        BUF_EVENT
        DONE

# fill: r4 bytes at r3 set to r5.
fill:
        mtctr   %r4
        addi    %r3, %r3, -1
1:      stbu    %r5, 1(%r3)
        bdnz    1b
        blr

# unrecord: forget the last record (a poll that found nothing).
unrecord:
        addi    %r31, %r31, -R_SIZE
        LI64    %r26, CTL
        ld      %r27, CTL_COUNT(%r26)
        addi    %r27, %r27, -1
        std     %r27, CTL_COUNT(%r26)
        blr
