# A stand-in firmware that acquires a hot-plugged NVDIMM and releases it
# when asked, as Linux's pseries code does (dlpar_acquire_drc,
# dlpar_configure_connector, dlpar_release_drc), through the RTAS calls
# QEMU takes as KVMPPC_H_RTAS hcalls. Slot 0 (DRC 0x90000000) starts empty;
# the host runs device_add, then device_del. Results, for `info registers`:
#
#   r14  check-exception of the add event (0: an event)
#   r15  get-sensor-state DR_ENTITY_SENSE before acquiring (2: unusable)
#   r16  set-indicator ALLOCATION usable      r17 set-indicator ISOLATION unisolate
#   r18  ibm,configure-connector calls        r19 its last status (0: complete)
#   r20  H_SCM_READ_METADATA status           r21 the label's first 8 bytes
#   r22  check-exception of the remove event
#   r23  set-indicator ISOLATION isolate      r24 set-indicator ALLOCATION unusable
#   r25  get-sensor-state after the release
#   r30 = 0x600d0000 at the end, 0x0bad if a program check was taken
    .set BUF, 0x3000                # struct rtas_args
    .set WORK, 0x4000               # configure-connector work area
    .set EVBUF, 0x5000              # check-exception buffer
    .set DRC, 0x9000                # << 16: PMEM slot 0

    .macro rtas token, nargs, nret
    li    %r10, \token
    stw   %r10, 0(%r29)
    li    %r10, \nargs
    stw   %r10, 4(%r29)
    li    %r10, \nret
    stw   %r10, 8(%r29)
    .endm
    .macro arg n, reg
    stw   \reg, (12 + 4 * \n)(%r29)
    .endm
    .macro call                     # KVMPPC_H_RTAS
    li    %r3, 0
    ori   %r3, %r3, 0xf000
    mr    %r4, %r29
    sc    1
    .endm

    .section .text
    .org 0x100
    b     main
    .org 0x700
    li    %r30, 0xbad
1:  b     1b

    .org 0x1000
main:
    li    %r29, BUF
    lis   %r31, DRC
    clrldi %r31, %r31, 32

    # check-exception(0, 0, all classes, 0, EVBUF, 2048) until an event
    # (QEMU delivers it on the EPOW source: no CAS was made).
1:  rtas  0x200e, 6, 1
    li    %r11, 0
    arg   0, %r11
    arg   1, %r11
    li    %r12, -1
    arg   2, %r12
    arg   3, %r11
    li    %r12, EVBUF
    arg   4, %r12
    li    %r12, 2048
    arg   5, %r12
    call
    lwz   %r14, 36(%r29)
    cmpwi %r14, 0
    bne   1b

    # get-sensor-state(DR_ENTITY_SENSE 9003, drc)
    rtas  0x201d, 2, 2
    li    %r12, 9003
    arg   0, %r12
    arg   1, %r31
    call
    lwz   %r15, 24(%r29)            # rets[1]: the state
    # set-indicator(ALLOCATION 9003, drc, USABLE 1)
    rtas  0x201a, 3, 1
    li    %r12, 9003
    arg   0, %r12
    arg   1, %r31
    li    %r12, 1
    arg   2, %r12
    call
    lwz   %r16, 24(%r29)
    # set-indicator(ISOLATION 9001, drc, UNISOLATE 1)
    rtas  0x201a, 3, 1
    li    %r12, 9001
    arg   0, %r12
    arg   1, %r31
    li    %r12, 1
    arg   2, %r12
    call
    lwz   %r17, 24(%r29)

    # ibm,configure-connector(WORK, 0) until it answers 0 (complete) or
    # fails; the work area starts with the DRC index and 0.
    li    %r12, WORK
    stw   %r31, 0(%r12)
    li    %r11, 0
    stw   %r11, 4(%r12)
    li    %r18, 0
2:  rtas  0x201e, 2, 1
    li    %r12, WORK
    arg   0, %r12
    li    %r11, 0
    arg   1, %r11
    call
    addi  %r18, %r18, 1
    lwz   %r19, 20(%r29)
    cmpwi %r19, 0
    beq   3f
    cmpwi %r19, 0
    blt   3f
    cmpwi %r18, 64
    blt   2b
3:
    # H_SCM_READ_METADATA(drc, 0, 8)
    li    %r3, 0x3e4
    mr    %r4, %r31
    li    %r5, 0
    li    %r6, 8
    sc    1
    mr    %r20, %r3
    mr    %r21, %r4

    # the remove event
4:  rtas  0x200e, 6, 1
    li    %r11, 0
    arg   0, %r11
    arg   1, %r11
    li    %r12, -1
    arg   2, %r12
    arg   3, %r11
    li    %r12, EVBUF
    arg   4, %r12
    li    %r12, 2048
    arg   5, %r12
    call
    lwz   %r22, 36(%r29)
    cmpwi %r22, 0
    bne   4b

    # set-indicator(ISOLATION, drc, ISOLATE 0), then (ALLOCATION, UNUSABLE 0)
    rtas  0x201a, 3, 1
    li    %r12, 9001
    arg   0, %r12
    arg   1, %r31
    li    %r12, 0
    arg   2, %r12
    call
    lwz   %r23, 24(%r29)
    rtas  0x201a, 3, 1
    li    %r12, 9003
    arg   0, %r12
    arg   1, %r31
    li    %r12, 0
    arg   2, %r12
    call
    lwz   %r24, 24(%r29)
    rtas  0x201d, 2, 2
    li    %r12, 9003
    arg   0, %r12
    arg   1, %r31
    call
    lwz   %r25, 24(%r29)

    lis   %r30, 0x600d
5:  b     5b
