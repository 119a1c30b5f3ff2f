/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Drives every entry point of papr_scm.h from C, as a VMM would: a fake
 * VMM keeps the label areas, 1 MiB of guest memory, a flush executor and
 * the one event queue behind the callbacks. Built and run by
 * capi/tests/c_program.rs (plainly and with -fsanitize=address,undefined);
 * argv[1] is a directory for the trace files, which that test replays.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "papr_scm.h"

/* The test hook of the test-hooks feature: not part of the ABI. */
void papr_scm_test_panic_next_label_access(void);

static int checks;

#define CHECK(cond)                                                          \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            char e_[512];                                                    \
            papr_scm_last_error(e_, sizeof(e_));                             \
            fprintf(stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
                    __FILE__, __LINE__, #cond, e_);                          \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* A call failed with `code` and the last error contains `text`. */
#define CHECK_ERR(call, code, text)                                          \
    do {                                                                     \
        papr_scm_result r_ = (call);                                         \
        char e_[512];                                                        \
        papr_scm_last_error(e_, sizeof(e_));                                 \
        checks++;                                                            \
        if (r_ != (code) || !strstr(e_, (text))) {                           \
            fprintf(stderr, "%s:%d: %s\n  returned %u, wanted %u; "         \
                    "last error '%s', wanted '%s'\n", __FILE__, __LINE__,    \
                    #call, (unsigned)r_, (unsigned)(code), e_, (text));      \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define LAST_ERROR_HAS(text) CHECK(last_error_has(text))

static bool last_error_has(const char *text)
{
    char e[512];
    papr_scm_last_error(e, sizeof(e));
    return strstr(e, text) != NULL;
}

/* ---- hcall and RTAS numbers (Linux hvcall.h, QEMU spapr.h) ---- */
#define H_SUCCESS 0
#define H_HARDWARE (-1)
#define H_FUNCTION (-2)
#define H_PARAMETER (-4)
#define H_P2 (-55)
#define H_LONG_BUSY_ORDER_10_MSEC 9901
#define H_SCM_READ_METADATA 0x3E4
#define H_SCM_WRITE_METADATA 0x3E8
#define H_SCM_BIND_MEM 0x3EC
#define H_SCM_UNBIND_MEM 0x3F0
#define H_SCM_QUERY_BLOCK_MEM_BINDING 0x3F4
#define H_SCM_QUERY_LOGICAL_MEM_BINDING 0x3F8
#define H_SCM_UNBIND_ALL 0x3FC
#define H_SCM_HEALTH 0x400
#define H_SCM_PERFORMANCE_STATS 0x418
#define H_SCM_FLUSH 0x44C
#define H_PUT_TERM_CHAR 0x58
#define ISOLATION_STATE 9001
#define ALLOCATION_STATE 9003
#define ENTITY_SENSE 9003
#define CC_NEXT_CHILD 2
#define CC_NEXT_PROPERTY 3
#define PPC_BIT(n) (1ULL << (63 - (n)))

#define K 1024ULL
#define M (1024 * K)
#define G (1024 * M)
#define GUEST_RAM (1 * M)
#define SLOTS 4
#define LABEL (128 * K)

/* ---- the fake VMM ---- */
struct vmm {
    uint8_t *label[SLOTS];
    uint8_t ram[GUEST_RAM];
    /* Flush executor: how many polls a flush stays pending. */
    int flush_pending_polls;
    int flush_polls_left;
    int flush_starts, flush_forgets;
    /* The event queue. */
    struct { uint32_t action, drc; } events[64];
    int n_events;
    bool queue_full;
    int withdrawn;
    int label_flushes, bound_blocks, unbound_blocks, guest_times;
    int guest_reads;
    int released[SLOTS + 1];
    int n_released;
};

static struct vmm vmm;

static int label_read(void *opaque, uint32_t slot, uint64_t off, uint8_t *buf, size_t len)
{
    struct vmm *v = opaque;
    if (slot >= SLOTS || !v->label[slot] || off + len > LABEL)
        return -1;
    memcpy(buf, v->label[slot] + off, len);
    return 0;
}

static int label_write(void *opaque, uint32_t slot, uint64_t off, const uint8_t *buf, size_t len)
{
    struct vmm *v = opaque;
    if (slot >= SLOTS || !v->label[slot] || off + len > LABEL)
        return -1;
    memcpy(v->label[slot] + off, buf, len);
    return 0;
}

static int label_flush(void *opaque, uint32_t slot)
{
    (void)slot;
    ((struct vmm *)opaque)->label_flushes++;
    return 0;
}

static int guest_read(void *opaque, uint64_t gpa, uint8_t *buf, size_t len)
{
    struct vmm *v = opaque;
    v->guest_reads++;
    if (gpa > GUEST_RAM || len > GUEST_RAM - gpa)
        return -1;
    memcpy(buf, v->ram + gpa, len);
    return 0;
}

static int guest_write(void *opaque, uint64_t gpa, const uint8_t *buf, size_t len)
{
    struct vmm *v = opaque;
    if (gpa > GUEST_RAM || len > GUEST_RAM - gpa)
        return -1;
    memcpy(v->ram + gpa, buf, len);
    return 0;
}

static uint32_t flush_start(void *opaque, uint32_t slot, uint64_t token)
{
    struct vmm *v = opaque;
    (void)slot, (void)token;
    v->flush_starts++;
    v->flush_polls_left = v->flush_pending_polls;
    return v->flush_polls_left ? PAPR_SCM_FLUSH_PENDING : PAPR_SCM_FLUSH_DONE;
}

static uint32_t flush_poll(void *opaque, uint32_t slot, uint64_t token)
{
    struct vmm *v = opaque;
    (void)slot, (void)token;
    if (v->flush_polls_left > 0) {
        v->flush_polls_left--;
        return PAPR_SCM_FLUSH_PENDING;
    }
    return PAPR_SCM_FLUSH_DONE;
}

static void flush_forget(void *opaque, uint32_t slot, uint64_t token)
{
    (void)slot, (void)token;
    ((struct vmm *)opaque)->flush_forgets++;
}

static void bound(void *opaque, uint32_t slot, uint64_t addr, uint64_t blocks)
{
    (void)slot, (void)addr;
    ((struct vmm *)opaque)->bound_blocks += (int)blocks;
}

static void unbound(void *opaque, uint32_t slot, uint64_t addr, uint64_t blocks)
{
    (void)slot, (void)addr;
    ((struct vmm *)opaque)->unbound_blocks += (int)blocks;
}

static int event_push(void *opaque, uint32_t action, uint32_t drc)
{
    struct vmm *v = opaque;
    if (v->queue_full || v->n_events == 64)
        return 1;
    v->events[v->n_events].action = action;
    v->events[v->n_events].drc = drc;
    v->n_events++;
    return 0;
}

static void event_withdraw(void *opaque, uint32_t drc)
{
    struct vmm *v = opaque;
    int kept = 0;
    for (int i = 0; i < v->n_events; i++)
        if (v->events[i].drc != drc)
            v->events[kept++] = v->events[i];
        else
            v->withdrawn++;
    v->n_events = kept;
}

static void guest_time(void *opaque, papr_scm_rtc_time *t)
{
    ((struct vmm *)opaque)->guest_times++;
    t->year = 2026;
    t->month = 12;
    t->day = 3;
    t->hour = 13;
    t->minute = 37;
    t->second = 0;
}

static void on_released(void *opaque, uint32_t slot)
{
    struct vmm *v = opaque;
    v->released[v->n_released++ % (SLOTS + 1)] = (int)slot;
}

static papr_scm_callbacks callbacks(void)
{
    papr_scm_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.opaque = &vmm;
    cb.label_read = label_read;
    cb.label_write = label_write;
    cb.label_flush = label_flush;
    cb.guest_read = guest_read;
    cb.guest_write = guest_write;
    cb.flush_start = flush_start;
    cb.flush_poll = flush_poll;
    cb.flush_forget = flush_forget;
    cb.bound = bound;
    cb.unbound = unbound;
    cb.event_push = event_push;
    cb.event_withdraw = event_withdraw;
    cb.guest_time = guest_time;
    return cb;
}

static papr_scm_machine_config machine_config(uint32_t profile)
{
    papr_scm_machine_config c = {
        .ram_size = 2 * G,
        .maxmem = 8 * G,
        .slots = SLOTS,
        .numa_nodes = 2,
        .profile = profile,
        .numa_form = PAPR_SCM_NUMA_FORM1,
    };
    return c;
}

/* A plain nvdimm of `data` bytes plus the label, at `addr` in `slot`. */
static papr_scm_device_config device(uint32_t slot, uint64_t addr, uint64_t data)
{
    papr_scm_device_config d;
    memset(&d, 0, sizeof(d));
    d.slot = slot;
    d.addr = addr;
    d.size = data + LABEL;
    d.label_size = LABEL;
    for (int i = 0; i < 16; i++)
        d.uuid[i] = (uint8_t)(0x10 * slot + i + 1);
    d.kind = PAPR_SCM_KIND_NVDIMM;
    d.pmem_override = -1;
    d.persistence_failed_count = -1;
    return d;
}

static uint64_t drc(uint32_t slot)
{
    return 0x90000000u + slot;
}

/* One hcall: r3 in *st, the registers in r[]. */
static bool hcall(const papr_scm_machine *m, uint64_t op, uint64_t r[9], int64_t *st)
{
    return papr_scm_hcall(m, op, r, st);
}

static int64_t call(const papr_scm_machine *m, uint64_t op, uint64_t a0, uint64_t a1,
                    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t out[9])
{
    uint64_t r[9] = { a0, a1, a2, a3, a4, 0, 0, 0, 0 };
    int64_t st = 12345;
    CHECK(hcall(m, op, r, &st));
    if (out)
        memcpy(out, r, sizeof(r));
    return st;
}

static uint32_t rtas1(const papr_scm_machine *m, uint32_t service, const uint32_t *args,
                      size_t nargs, uint32_t *rets, size_t nret, papr_scm_effect *effect)
{
    papr_scm_effect e;
    bool ours = papr_scm_rtas(m, service, args, nargs, rets, nret, effect ? effect : &e);
    CHECK(ours);
    return rets[0];
}

static void set_indicator(const papr_scm_machine *m, uint32_t kind, uint32_t index,
                          uint32_t value, papr_scm_effect *effect)
{
    uint32_t args[3] = { kind, index, value }, rets[1] = { 77 };
    CHECK(rtas1(m, PAPR_SCM_RTAS_SET_INDICATOR, args, 3, rets, 1, effect) == 0);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The guest's acquire and walk of a hot-plugged connector (Linux
 * dlpar_acquire_drc, dlpar_configure_connector); returns the properties. */
static int acquire_and_configure(const papr_scm_machine *m, uint32_t slot)
{
    uint32_t index = (uint32_t)drc(slot);
    uint32_t sense_args[2] = { ENTITY_SENSE, index }, sense[2] = { 7, 7 };
    CHECK(rtas1(m, PAPR_SCM_RTAS_GET_SENSOR_STATE, sense_args, 2, sense, 2, NULL) == 0);
    CHECK(sense[1] == 2); /* present, not yet usable */
    set_indicator(m, ALLOCATION_STATE, index, 1, NULL);
    set_indicator(m, ISOLATION_STATE, index, 1, NULL);

    const uint64_t wa = 0x20000;
    int props = 0;
    for (int step = 0; step < 40; step++) {
        memset(vmm.ram + wa, 0, 4096);
        vmm.ram[wa] = (uint8_t)(index >> 24);
        vmm.ram[wa + 1] = (uint8_t)(index >> 16);
        vmm.ram[wa + 2] = (uint8_t)(index >> 8);
        vmm.ram[wa + 3] = (uint8_t)index;
        uint32_t args[2] = { (uint32_t)wa, 0 }, rets[1] = { 77 };
        papr_scm_effect e = { 99, 99, 99, 99 };
        uint32_t st = rtas1(m, PAPR_SCM_RTAS_CONFIGURE_CONNECTOR, args, 2, rets, 1, &e);
        const uint8_t *area = vmm.ram + wa;
        if (step == 0) {
            char want[32];
            snprintf(want, sizeof(want), "ibm,pmemory@%x", index);
            CHECK(st == CC_NEXT_CHILD);
            CHECK(strcmp((const char *)area + be32(area + 8), want) == 0);
        } else if (st == CC_NEXT_PROPERTY) {
            props++;
            const char *name = (const char *)area + be32(area + 8);
            if (strcmp(name, "ibm,my-drc-index") == 0) {
                CHECK(be32(area + 12) == 4);
                CHECK(be32(area + be32(area + 16)) == index);
            }
            CHECK(e.kind == PAPR_SCM_EFFECT_NONE);
        } else {
            CHECK(st == 0);
            CHECK(e.kind == PAPR_SCM_EFFECT_CONFIGURED && e.slot == slot);
            return props;
        }
    }
    CHECK(!"configure-connector did not finish");
    return -1;
}

/* The guest gives the connector back (Linux dlpar_release_drc). */
static void release(const papr_scm_machine *m, uint32_t slot, papr_scm_effect *e)
{
    set_indicator(m, ISOLATION_STATE, (uint32_t)drc(slot), 0, NULL);
    set_indicator(m, ALLOCATION_STATE, (uint32_t)drc(slot), 0, e);
}

struct props {
    int n;
    bool drc_ok, pfc, assoc_form2;
};

static void on_prop(void *opaque, const char *name, const void *value, size_t len)
{
    struct props *p = opaque;
    p->n++;
    if (strcmp(name, "ibm,my-drc-index") == 0)
        p->drc_ok = len == 4 && be32(value) == 0x90000000u;
    if (strcmp(name, "ibm,persistence-failed-count") == 0)
        p->pfc = len == 8;
    if (strcmp(name, "ibm,associativity") == 0)
        p->assoc_form2 = len == 8 && be32(value) == 1;
}

/* ---- the tests ---- */

static void test_config_errors(void)
{
    papr_scm_callbacks cb = callbacks();
    papr_scm_machine_config mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    papr_scm_device_config d = device(0, 2 * G, 1 * G);
    papr_scm_machine *m = (papr_scm_machine *)&vmm; /* overwritten with NULL on failure */

    CHECK(papr_scm_last_error(NULL, 0) == 0); /* nothing failed yet */
    CHECK_ERR(papr_scm_machine_new(NULL, &d, 1, &cb, &m), PAPR_SCM_NULL_PARAMETER, "config: is NULL");
    CHECK(m == NULL);
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, NULL, &m), PAPR_SCM_NULL_PARAMETER, "callbacks: is NULL");
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, NULL), PAPR_SCM_NULL_PARAMETER, "out: is NULL");
    CHECK_ERR(papr_scm_machine_new(&mc, NULL, 1, &cb, &m), PAPR_SCM_NULL_PARAMETER, "devices: is NULL");

    cb.label_read = NULL;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_NULL_PARAMETER,
              "callbacks: label_read is NULL");
    cb = callbacks();
    cb.label_write = NULL;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_NULL_PARAMETER,
              "callbacks: label_write is NULL");
    cb = callbacks();

    mc.profile = 7;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_INVALID_ARGUMENT,
              "machine: profile: 7 is not");
    mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    mc.numa_form = 3;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_INVALID_ARGUMENT,
              "machine: numa_form: 3 is not");
    mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    mc.ram_size = 2 * G + 4096;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_CONFIG,
              "machine: ram: 0x80001000 must be a non-zero multiple of 256 MiB");
    mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    mc.numa_nodes = 0;
    CHECK_ERR(papr_scm_machine_new(&mc, &d, 1, &cb, &m), PAPR_SCM_CONFIG, "numa-nodes: must be at least 1");
    mc = machine_config(PAPR_SCM_PROFILE_PAPR);

    papr_scm_device_config bad = d;
    bad.slot = 1;
    bad.label_size = 64 * K;
    bad.size = 1 * G + 64 * K;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 1: label-size: 0x10000 is below the minimum of 128 KiB");
    bad = d;
    bad.kind = 7;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_INVALID_ARGUMENT, "slot 0: kind: 7 is not");
    bad = d;
    bad.pmem_override = 5;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_INVALID_ARGUMENT, "slot 0: pmem_override");
    bad = d;
    bad.pmem_override = 1; /* a plain nvdimm has no pmem-override */
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: pmem-override: only spapr-nvdimm has this property");
    bad = d;
    bad.persistence_failed_count = -5;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_INVALID_ARGUMENT,
              "slot 0: persistence_failed_count");
    bad = d;
    bad.associativity_len = 3; /* and associativity NULL */
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_NULL_PARAMETER, "associativity: is NULL");
    uint32_t cells[17] = { 4, 0, 0, 0, 1 };
    bad.associativity = cells;
    bad.associativity_len = 17;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: associativity: more than 16 cells");
    bad.associativity_len = 4;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: associativity: first cell must count the cells after it");
    bad.associativity_len = 5;
    cells[4] = 9;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: node: 9 is not below the machine's 2 NUMA node(s)");
    bad = d;
    memset(bad.uuid, 0, 16);
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG, "slot 0: uuid: must be set");
    bad = d;
    bad.readonly = true;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: unarmed: must be on because the device is read-only");
    bad = d;
    bad.addr = 2 * G + 4096;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG, "slot 0: addr:");
    bad = d;
    bad.slot = 4;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG, "slot 4: slot: invalid slot number 4");
    papr_scm_device_config two[2] = { d, d };
    two[1].addr = 3 * G;
    CHECK_ERR(papr_scm_machine_new(&mc, two, 2, &cb, &m), PAPR_SCM_CONFIG, "slot 0: slot: slot 0 is busy");
    /* An spapr-nvdimm needing H_SCM_FLUSH without an executor. */
    bad = d;
    bad.kind = PAPR_SCM_KIND_SPAPR_NVDIMM;
    cb.flush_start = NULL;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: the device needs H_SCM_FLUSH but the flush_start and flush_poll callbacks are NULL");
    cb = callbacks();
    /* The qemu profile has no ibm,persistence-failed-count. */
    mc.profile = PAPR_SCM_PROFILE_QEMU;
    bad = d;
    bad.persistence_failed_count = 3;
    CHECK_ERR(papr_scm_machine_new(&mc, &bad, 1, &cb, &m), PAPR_SCM_CONFIG,
              "slot 0: persistence-failed-count: QEMU has no such property");
    CHECK(m == NULL);

    /* The last error: whole length returned, the copy cut and terminated. */
    char small[8];
    memset(small, 'x', sizeof(small));
    size_t n = papr_scm_last_error(small, sizeof(small));
    CHECK(n == strlen("slot 0: persistence-failed-count: QEMU has no such property; use the papr profile"));
    CHECK(small[7] == '\0' && strcmp(small, "slot 0:") == 0);
    CHECK(papr_scm_last_error(NULL, 100) == n);
    CHECK(papr_scm_last_error(small, 0) == n && small[0] == 's');
    CHECK(papr_scm_last_error(small, 1) == n && small[0] == '\0');

    papr_scm_machine_free(NULL);
}

/* The papr machine most tests use: an nvdimm in slot 0 (1 GiB at 2 GiB),
 * an spapr-nvdimm in slot 1 (256 MiB at 3 GiB, node 1 with its own
 * associativity, a dirty-shutdown count). */
static const uint32_t assoc1[5] = { 4, 0, 0, 1, 1 };

static papr_scm_machine *papr_machine(uint32_t profile)
{
    papr_scm_callbacks cb = callbacks();
    papr_scm_machine_config mc = machine_config(profile);
    papr_scm_device_config d[2] = { device(0, 2 * G, 1 * G), device(1, 3 * G, 256 * M) };
    d[1].kind = PAPR_SCM_KIND_SPAPR_NVDIMM;
    d[1].node = 1;
    d[1].associativity = assoc1;
    d[1].associativity_len = 5;
    if (profile == PAPR_SCM_PROFILE_PAPR)
        d[1].persistence_failed_count = 2;
    for (int i = 0; i < SLOTS; i++)
        memset(vmm.label[i], 0, LABEL);
    memcpy(vmm.label[0], "NAMESPACE_INDEX", 16);
    papr_scm_machine *m = NULL;
    CHECK(papr_scm_machine_new(&mc, d, 2, &cb, &m) == PAPR_SCM_OK);
    CHECK(m != NULL);
    return m;
}

static void test_hcalls(const papr_scm_machine *m)
{
    uint64_t r[9];
    int64_t st;

    /* READ_METADATA: 8 bytes at 0, big-endian. */
    CHECK(call(m, H_SCM_READ_METADATA, drc(0), 0, 8, 0, 0, r) == H_SUCCESS);
    CHECK(r[0] == 0x4e414d4553504143ULL); /* "NAMESPAC" */
    CHECK(call(m, H_SCM_READ_METADATA, drc(0), 0, 3, 0, 0, r) != H_SUCCESS);
    CHECK(call(m, H_SCM_READ_METADATA, drc(0), LABEL, 8, 0, 0, r) != H_SUCCESS);
    /* WRITE_METADATA: 4 bytes at 16. */
    CHECK(call(m, H_SCM_WRITE_METADATA, drc(0), 16, 0xdeadbeef, 4, 0, r) == H_SUCCESS);
    CHECK(be32(vmm.label[0] + 16) == 0xdeadbeef);
    /* BIND_MEM: the whole device, anywhere. */
    int bound_before = vmm.bound_blocks;
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 4, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(r[1] == 2 * G && r[2] == 4);
    CHECK(vmm.bound_blocks == bound_before + 4);
    /* QUERY_BLOCK and QUERY_LOGICAL. */
    CHECK(call(m, H_SCM_QUERY_BLOCK_MEM_BINDING, drc(0), 1, 0, 0, 0, r) == H_SUCCESS);
    CHECK(r[0] == 2 * G + 256 * M);
    CHECK(call(m, H_SCM_QUERY_LOGICAL_MEM_BINDING, 2 * G + 256 * M + 5, 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(r[0] == drc(0) && r[1] == 1);
    /* HEALTH: nothing wrong; the papr mask. */
    CHECK(call(m, H_SCM_HEALTH, drc(0), 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(r[0] == 0 && r[1] != 0);
    /* PERFORMANCE_STATS: the size, then every statistic into guest memory. */
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), 0, 0, 0, 0, r) == H_SUCCESS);
    uint64_t size = r[0];
    CHECK(size == 272);
    memset(vmm.ram + 0x1000, 0, size);
    memcpy(vmm.ram + 0x1000, "SCMSTATS\0\0\0\1\0\0\0\0", 16);
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), 0x1000, size, 0, 0, r) == H_SUCCESS);
    CHECK(memcmp(vmm.ram + 0x1000 + 16, "CtlResCt", 8) == 0);
    CHECK(memcmp(vmm.ram + 0x1000 + 64, "MemLife ", 8) == 0); /* the fourth statistic */
    CHECK(vmm.ram[0x1000 + 79] == 100);
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), GUEST_RAM - 8, size, 0, 0, r) == H_P2);
    /* A buffer that leaves guest RAM ([0, ram_size)) for device memory is
       refused before the VMM is asked: the answer cannot depend on what the
       VMM maps there, and a trace replays. */
    int reads = vmm.guest_reads;
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), 2 * G - 8, size, 0, 0, r) == H_P2);
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), 2 * G, size, 0, 0, r) == H_P2);
    CHECK(vmm.guest_reads == reads);
    /* FLUSH on the spapr-nvdimm: pending twice, then done. */
    vmm.flush_pending_polls = 2;
    int starts = vmm.flush_starts, label_flushes = vmm.label_flushes;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    uint64_t token = r[0];
    CHECK(token != 0 && vmm.flush_starts == starts + 1);
    CHECK(vmm.label_flushes == label_flushes + 1); /* labels made durable first */
    CHECK(call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    CHECK(call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    CHECK(call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_P2);
    /* A plain nvdimm has no flush hcall. */
    CHECK(call(m, H_SCM_FLUSH, drc(0), 0, 0, 0, 0, r) == H_PARAMETER);
    /* UNBIND_MEM the last block, then UNBIND_ALL the rest of the device. */
    int unbound_before = vmm.unbound_blocks;
    CHECK(call(m, H_SCM_UNBIND_MEM, drc(0), 2 * G + 768 * M, 1, 0, 0, r) == H_SUCCESS);
    CHECK(r[1] == 1);
    CHECK(call(m, H_SCM_UNBIND_ALL, 2, drc(0), 0, 0, 0, r) == H_SUCCESS);
    CHECK(r[1] == 3);
    CHECK(vmm.unbound_blocks == unbound_before + 4);
    /* Not a PMEM DRC, an empty slot. */
    CHECK(call(m, H_SCM_HEALTH, 0x10000000, 0, 0, 0, 0, r) == H_PARAMETER);
    CHECK(call(m, H_SCM_HEALTH, drc(3), 0, 0, 0, 0, r) == H_PARAMETER);

    /* Not an SCM hcall: false, nothing written. */
    uint64_t keep[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    st = 777;
    CHECK(!hcall(m, H_PUT_TERM_CHAR, keep, &st));
    CHECK(st == 777 && keep[0] == 1 && keep[8] == 9);
    CHECK(!hcall(m, 0x3E5, keep, &st) && st == 777); /* between two SCM opcodes */
    /* NULL and misaligned arguments. */
    CHECK(!papr_scm_hcall(m, H_SCM_HEALTH, NULL, &st) && st == 777);
    LAST_ERROR_HAS("args: is NULL");
    CHECK(!papr_scm_hcall(m, H_SCM_HEALTH, keep, NULL));
    LAST_ERROR_HAS("ret: is NULL");
    CHECK(!papr_scm_hcall(NULL, H_SCM_HEALTH, keep, &st));
    LAST_ERROR_HAS("m: is NULL");
    static uint64_t words[10];
    uint64_t *odd = (uint64_t *)((char *)words + 1);
    CHECK(!papr_scm_hcall(m, H_SCM_HEALTH, odd, &st) && st == 777);
    LAST_ERROR_HAS("args: is not aligned");
}

static void test_qemu_profile(void)
{
    papr_scm_machine *m = papr_machine(PAPR_SCM_PROFILE_QEMU);
    uint64_t r[9];
    /* QEMU has no handler for the QUERY calls and PERFORMANCE_STATS. */
    CHECK(call(m, H_SCM_QUERY_BLOCK_MEM_BINDING, drc(0), 0, 0, 0, 0, r) == H_FUNCTION);
    CHECK(call(m, H_SCM_QUERY_LOGICAL_MEM_BINDING, 2 * G, 0, 0, 0, 0, r) == H_FUNCTION);
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(0), 0, 0, 0, 0, r) == H_FUNCTION);
    CHECK(call(m, H_SCM_HEALTH, drc(0), 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 4, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(r[1] == 2 * G);
    /* No persistence-failed-count in its node. */
    struct props p = { 0 };
    char name[32];
    CHECK(papr_scm_pmemory_node(m, 1, name, sizeof(name), on_prop, &p) == PAPR_SCM_OK);
    CHECK(!p.pfc && p.n > 8);
    papr_scm_machine_free(m);
}

static void test_hotplug(const papr_scm_machine *m)
{
    papr_scm_device_config d = device(2, 4 * G, 256 * M);
    papr_scm_effect e;
    bool released = true;
    uint64_t r[9];

    /* Errors first: nothing changes. */
    CHECK_ERR(papr_scm_plug(m, NULL), PAPR_SCM_NULL_PARAMETER, "device: is NULL");
    CHECK_ERR(papr_scm_plug(NULL, &d), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    papr_scm_device_config bad = device(0, 5 * G, 256 * M);
    CHECK_ERR(papr_scm_plug(m, &bad), PAPR_SCM_SLOT, "slot 0: slot: slot 0 is busy");
    bad.slot = 9;
    CHECK_ERR(papr_scm_plug(m, &bad), PAPR_SCM_SLOT, "slot 9: slot: invalid slot number 9");
    bad = d;
    bad.size = 256 * M + 100;
    CHECK_ERR(papr_scm_plug(m, &bad), PAPR_SCM_CONFIG, "slot 2: size: data size");
    bad = d;
    bad.addr = 2 * G; /* overlaps slot 0 */
    CHECK_ERR(papr_scm_plug(m, &bad), PAPR_SCM_CONFIG, "slot 2: addr:");
    /* The VMM's queue is full: the device is taken back out. */
    vmm.queue_full = true;
    CHECK_ERR(papr_scm_plug(m, &d), PAPR_SCM_EVENTS, "slot 2: events:");
    vmm.queue_full = false;
    CHECK(call(m, H_SCM_HEALTH, drc(2), 0, 0, 0, 0, r) == H_PARAMETER);
    CHECK(vmm.n_events == 0);

    /* device_add: the add event goes to the VMM's queue. */
    int times = vmm.guest_times;
    CHECK(papr_scm_plug(m, &d) == PAPR_SCM_OK);
    CHECK(vmm.n_events == 1 && vmm.events[0].action == PAPR_SCM_EVENT_ADD && vmm.events[0].drc == drc(2));
    CHECK(vmm.guest_times == times + 1);
    /* check-exception and event-scan are the VMM's: not answered. */
    uint32_t ce[7] = { 0x500, 0, 0x10000000, 0, 0x30000, 2048 }, rets[1] = { 55 };
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_CHECK_EXCEPTION, ce, 6, rets, 1, &e) && rets[0] == 55);
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_EVENT_SCAN, ce, 4, rets, 1, &e) && rets[0] == 55);
    vmm.n_events = 0; /* the guest collected it */
    /* A CPU connector is the VMM's too. */
    uint32_t cpu[3] = { ISOLATION_STATE, 0x10000000, 1 };
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, cpu, 3, rets, 1, &e) && rets[0] == 55);
    /* Bad arguments: false, with the reason. */
    CHECK(!papr_scm_rtas(m, 9, cpu, 3, rets, 1, &e));
    LAST_ERROR_HAS("service: 9 is not");
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, NULL, 3, rets, 1, &e));
    LAST_ERROR_HAS("args: is NULL");
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, cpu, 3, NULL, 1, &e));
    LAST_ERROR_HAS("rets: is NULL");
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, cpu, 3, rets, 1, NULL));
    LAST_ERROR_HAS("effect: is NULL");
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, cpu, 3, rets, 14, &e));
    LAST_ERROR_HAS("nargs + nret: 17 words exceed");
    CHECK(!papr_scm_rtas(NULL, PAPR_SCM_RTAS_SET_INDICATOR, cpu, 3, rets, 1, &e));
    /* A PMEM call with the wrong word count is papr-scm's: -3. */
    uint32_t idx[3] = { ISOLATION_STATE, (uint32_t)drc(2), 1 }, two[2] = { 55, 55 };
    CHECK(papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, idx, 3, two, 2, &e) && (int32_t)two[0] == -3);

    /* The guest acquires and configures it; its hcalls work. */
    CHECK(acquire_and_configure(m, 2) >= 12);
    CHECK(call(m, H_SCM_HEALTH, drc(2), 0, 0, 0, 0, r) == H_SUCCESS);

    /* device_del: a remove event; the device stays until the guest lets go. */
    CHECK_ERR(papr_scm_unplug(NULL, 2, &released, &e), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    CHECK_ERR(papr_scm_unplug(m, 2, NULL, &e), PAPR_SCM_NULL_PARAMETER, "released: is NULL");
    CHECK_ERR(papr_scm_unplug(m, 2, &released, NULL), PAPR_SCM_NULL_PARAMETER, "effect: is NULL");
    vmm.queue_full = true;
    CHECK_ERR(papr_scm_unplug(m, 2, &released, &e), PAPR_SCM_EVENTS, "slot 2: events:");
    vmm.queue_full = false;
    CHECK(papr_scm_unplug(m, 2, &released, &e) == PAPR_SCM_OK);
    CHECK(!released && e.kind == PAPR_SCM_EFFECT_NONE);
    CHECK(vmm.n_events == 1 && vmm.events[0].action == PAPR_SCM_EVENT_REMOVE);
    CHECK_ERR(papr_scm_unplug(m, 2, &released, &e), PAPR_SCM_SLOT, "slot 2: an unplug is already in progress");
    CHECK(call(m, H_SCM_HEALTH, drc(2), 0, 0, 0, 0, r) == H_SUCCESS);
    /* The guest refuses once (unisolates the configured connector), then
     * gives it back. */
    set_indicator(m, ISOLATION_STATE, (uint32_t)drc(2), 1, &e);
    CHECK(e.kind == PAPR_SCM_EFFECT_UNPLUG_REFUSED && e.slot == 2);
    CHECK(papr_scm_unplug(m, 2, &released, &e) == PAPR_SCM_OK && !released);
    release(m, 2, &e);
    CHECK(e.kind == PAPR_SCM_EFFECT_RELEASED && e.slot == 2 && e.unbound_blocks == 0 && e.pending_flushes == 0);
    CHECK(call(m, H_SCM_HEALTH, drc(2), 0, 0, 0, 0, r) == H_PARAMETER);
    CHECK_ERR(papr_scm_unplug(m, 2, &released, &e), PAPR_SCM_SLOT, "slot 2: no device to unplug");
    CHECK_ERR(papr_scm_unplug(m, 77, &released, &e), PAPR_SCM_SLOT, "slot 77: no device to unplug");
    vmm.n_events = 0;

    /* Plugged and unplugged before the guest acquired it: gone at once,
     * its add event withdrawn from the VMM's queue. The slot and address
     * are free again. */
    CHECK(papr_scm_plug(m, &d) == PAPR_SCM_OK);
    CHECK(papr_scm_unplug(m, 2, &released, &e) == PAPR_SCM_OK);
    CHECK(released && e.kind == PAPR_SCM_EFFECT_RELEASED && e.slot == 2);
    CHECK(vmm.n_events == 0 && vmm.withdrawn == 1);
    CHECK(papr_scm_plug(m, &d) == PAPR_SCM_OK);
    CHECK(acquire_and_configure(m, 2) >= 12);
    vmm.n_events = 0;

    /* A hot-plug without an event queue is refused. */
    papr_scm_callbacks cb = callbacks();
    cb.event_push = NULL;
    papr_scm_machine_config mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    papr_scm_machine *bare = NULL;
    CHECK(papr_scm_machine_new(&mc, NULL, 0, &cb, &bare) == PAPR_SCM_OK);
    CHECK_ERR(papr_scm_plug(bare, &d), PAPR_SCM_EVENTS, "callbacks: event_push is NULL");
    CHECK_ERR(papr_scm_unplug(bare, 0, &released, &e), PAPR_SCM_EVENTS, "callbacks: event_push is NULL");
    papr_scm_machine_free(bare);
}

static void test_cas_and_resets(const papr_scm_machine *m)
{
    papr_scm_effect e;
    bool released;
    uint64_t r[9];

    CHECK_ERR(papr_scm_cas(m, 5), PAPR_SCM_INVALID_ARGUMENT, "numa_form: 5 is not");
    CHECK_ERR(papr_scm_cas(NULL, 2), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    CHECK(papr_scm_cas(m, PAPR_SCM_NUMA_FORM2) == PAPR_SCM_OK);
    /* A node plugged after CAS carries the negotiated form. */
    papr_scm_device_config d = device(3, 5 * G, 256 * M);
    CHECK(papr_scm_plug(m, &d) == PAPR_SCM_OK);
    struct props p = { 0 };
    char name[32];
    CHECK(papr_scm_pmemory_node(m, 3, name, sizeof(name), on_prop, &p) == PAPR_SCM_OK);
    CHECK(p.assoc_form2 && strcmp(name, "ibm,pmemory@90000003") == 0);
    CHECK(acquire_and_configure(m, 3) >= 12);
    vmm.n_events = 0;

    /* CAS resets the connectors: a pending unplug completes. */
    CHECK(papr_scm_unplug(m, 3, &released, &e) == PAPR_SCM_OK && !released);
    vmm.n_released = 0;
    CHECK(papr_scm_reset_connectors(m, on_released, &vmm) == PAPR_SCM_OK);
    CHECK(vmm.n_released == 1 && vmm.released[0] == 3);
    CHECK(call(m, H_SCM_HEALTH, drc(3), 0, 0, 0, 0, r) == H_PARAMETER);
    CHECK(papr_scm_reset_connectors(m, NULL, NULL) == PAPR_SCM_OK);
    CHECK_ERR(papr_scm_reset_connectors(NULL, NULL, NULL), PAPR_SCM_NULL_PARAMETER, "m: is NULL");

    /* A system reset: bindings released, a pending unplug completes, a
     * flush left pending is dropped. */
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 4, (uint64_t)-1, 0, r) == H_SUCCESS);
    vmm.flush_pending_polls = 5;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    uint64_t token = r[0];
    CHECK(papr_scm_unplug(m, 2, &released, &e) == PAPR_SCM_OK && !released);
    int unbound_before = vmm.unbound_blocks, flushes_before = vmm.label_flushes;
    vmm.n_released = 0;
    CHECK(papr_scm_reset(m, on_released, &vmm) == PAPR_SCM_OK);
    CHECK(vmm.n_released == 1 && vmm.released[0] == 2);
    CHECK(vmm.unbound_blocks == unbound_before + 4);
    CHECK(vmm.label_flushes > flushes_before); /* labels made durable */
    CHECK(call(m, H_SCM_QUERY_BLOCK_MEM_BINDING, drc(0), 0, 0, 0, 0, r) != H_SUCCESS);
    CHECK(call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_P2);
    CHECK(papr_scm_reset(m, NULL, NULL) == PAPR_SCM_OK);
    CHECK_ERR(papr_scm_reset(NULL, NULL, NULL), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    vmm.n_events = 0;
    vmm.flush_pending_polls = 0;
}

static void test_health_and_node(const papr_scm_machine *m)
{
    uint64_t r[9];
    const uint64_t unhealthy = PPC_BIT(6);

    CHECK(papr_scm_inject_health(m, 0, unhealthy, 0) == PAPR_SCM_OK);
    CHECK(call(m, H_SCM_HEALTH, drc(0), 0, 0, 0, 0, r) == H_SUCCESS && r[0] == unhealthy);
    CHECK(papr_scm_inject_health(m, 0, 0, unhealthy) == PAPR_SCM_OK);
    CHECK(call(m, H_SCM_HEALTH, drc(0), 0, 0, 0, 0, r) == H_SUCCESS && r[0] == 0);
    CHECK_ERR(papr_scm_inject_health(m, 0, 1, 0), PAPR_SCM_INVALID_ARGUMENT,
              "set_bits: 0x1 has bits outside PAPR's health bits 0 to 10");
    CHECK_ERR(papr_scm_inject_health(m, 0, 0, PPC_BIT(11)), PAPR_SCM_INVALID_ARGUMENT, "clear_bits:");
    CHECK_ERR(papr_scm_inject_health(m, 3, unhealthy, 0), PAPR_SCM_SLOT, "slot 3: holds no device");
    CHECK_ERR(papr_scm_inject_health(m, 1000, unhealthy, 0), PAPR_SCM_SLOT, "slot 1000: holds no device");
    CHECK_ERR(papr_scm_inject_health(NULL, 0, 0, 0), PAPR_SCM_NULL_PARAMETER, "m: is NULL");

    struct props p = { 0 };
    char name[32];
    CHECK(papr_scm_pmemory_node(m, 0, name, sizeof(name), on_prop, &p) == PAPR_SCM_OK);
    CHECK(strcmp(name, "ibm,pmemory@90000000") == 0);
    CHECK(p.n == 12 && p.drc_ok && p.pfc); /* papr: persistence-failed-count */
    char tiny[20]; /* the name has 20 characters: no room for the NUL */
    CHECK_ERR(papr_scm_pmemory_node(m, 0, tiny, sizeof(tiny), on_prop, &p), PAPR_SCM_BUFFER_TOO_SMALL,
              "name_buf: 20 bytes, 21 needed");
    CHECK_ERR(papr_scm_pmemory_node(NULL, 0, name, sizeof(name), on_prop, &p), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    CHECK_ERR(papr_scm_pmemory_node(m, 0, NULL, 32, on_prop, &p), PAPR_SCM_NULL_PARAMETER, "name_buf: is NULL");
    CHECK_ERR(papr_scm_pmemory_node(m, 0, name, 0, on_prop, &p), PAPR_SCM_NULL_PARAMETER, "name_buf: is NULL");
    CHECK_ERR(papr_scm_pmemory_node(m, 0, name, sizeof(name), NULL, &p), PAPR_SCM_NULL_PARAMETER, "prop: is NULL");
    CHECK_ERR(papr_scm_pmemory_node(m, 3, name, sizeof(name), on_prop, &p), PAPR_SCM_SLOT, "slot 3: holds no device");
    /* The spapr-nvdimm needs the flush hcall. */
    p.n = 0;
    CHECK(papr_scm_pmemory_node(m, 1, name, sizeof(name), on_prop, &p) == PAPR_SCM_OK);
    CHECK(p.n == 13 && strcmp(name, "ibm,pmemory@90000001") == 0);
}

static void test_save_load(const papr_scm_machine *m)
{
    uint64_t r[9];
    size_t len = 0;

    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 2, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(papr_scm_inject_health(m, 1, PPC_BIT(7), 0) == PAPR_SCM_OK);
    vmm.flush_pending_polls = 3;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    uint64_t token = r[0];

    CHECK_ERR(papr_scm_save(m, NULL, 0, &len), PAPR_SCM_BUFFER_TOO_SMALL, "buf: 0 bytes,");
    CHECK(len > 40);
    uint8_t *buf = malloc(len);
    size_t len2 = 0;
    CHECK_ERR(papr_scm_save(m, buf, len - 1, &len2), PAPR_SCM_BUFFER_TOO_SMALL, "needed");
    CHECK(len2 == len);
    CHECK_ERR(papr_scm_save(m, buf, len, NULL), PAPR_SCM_NULL_PARAMETER, "len: is NULL");
    CHECK_ERR(papr_scm_save(NULL, buf, len, &len2), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    CHECK(papr_scm_save(m, buf, len, &len2) == PAPR_SCM_OK && len2 == len);
    CHECK(memcmp(buf, "PSCMSNAP", 8) == 0);

    /* The destination: same devices; the state arrives whole. */
    papr_scm_machine *dst = papr_machine(PAPR_SCM_PROFILE_PAPR);
    int starts = vmm.flush_starts;
    CHECK(papr_scm_load(dst, buf, len) == PAPR_SCM_OK);
    CHECK(vmm.flush_starts == starts + 1); /* the pending flush started again */
    CHECK(call(dst, H_SCM_QUERY_BLOCK_MEM_BINDING, drc(0), 1, 0, 0, 0, r) == H_SUCCESS);
    CHECK(r[0] == 2 * G + 256 * M);
    CHECK(call(dst, H_SCM_HEALTH, drc(1), 0, 0, 0, 0, r) == H_SUCCESS && r[0] == PPC_BIT(7));
    int polls = 0;
    int64_t st;
    do {
        st = call(dst, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r);
        polls++;
    } while (st == H_LONG_BUSY_ORDER_10_MSEC && polls < 10);
    CHECK(st == H_SUCCESS);

    /* Garbage, a cut snapshot, nothing, NULL. */
    static const uint8_t garbage[64] = "not a snapshot at all";
    CHECK_ERR(papr_scm_load(dst, garbage, sizeof(garbage)), PAPR_SCM_SNAPSHOT, "load: snapshot: bad magic");
    CHECK_ERR(papr_scm_load(dst, buf, len - 3), PAPR_SCM_SNAPSHOT, "load: snapshot:");
    CHECK_ERR(papr_scm_load(dst, buf, 0), PAPR_SCM_SNAPSHOT, "load: snapshot:");
    CHECK_ERR(papr_scm_load(dst, NULL, 16), PAPR_SCM_NULL_PARAMETER, "buf: is NULL");
    CHECK_ERR(papr_scm_load(NULL, buf, len), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    for (size_t i = 8; i < len; i += 7) { /* every byte refused or accepted, never a crash */
        uint8_t *mangled = malloc(len);
        memcpy(mangled, buf, len);
        mangled[i] ^= 0xA5;
        papr_scm_result rc = papr_scm_load(dst, mangled, len);
        CHECK(rc == PAPR_SCM_OK || rc == PAPR_SCM_SNAPSHOT);
        free(mangled);
    }
    papr_scm_machine_free(dst);

    /* A destination in the other profile, or with a device missing. */
    papr_scm_machine *q = papr_machine(PAPR_SCM_PROFILE_QEMU);
    CHECK_ERR(papr_scm_load(q, buf, len), PAPR_SCM_SNAPSHOT, "load: restore: profile:");
    papr_scm_machine_free(q);
    papr_scm_callbacks cb = callbacks();
    papr_scm_machine_config mc = machine_config(PAPR_SCM_PROFILE_PAPR);
    papr_scm_machine *empty = NULL;
    CHECK(papr_scm_machine_new(&mc, NULL, 0, &cb, &empty) == PAPR_SCM_OK);
    CHECK_ERR(papr_scm_load(empty, buf, len), PAPR_SCM_SNAPSHOT, "load: restore:");
    papr_scm_machine_free(empty);
    free(buf);

    /* Finish on the source: poll the flush, unbind. */
    vmm.flush_pending_polls = 0;
    vmm.flush_polls_left = 0;
    while (call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC)
        ;
    CHECK(call(m, H_SCM_UNBIND_ALL, 2, drc(0), 0, 0, 0, r) == H_SUCCESS);
}

/* A traced session: its file is replayed by the Rust test. */
static void test_trace(const char *dir)
{
    char path[4096];
    uint64_t r[9];

    papr_scm_machine *m = papr_machine(PAPR_SCM_PROFILE_PAPR);
    /* State the trace must carry from before it opened. */
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 1, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_WRITE_METADATA, drc(0), 256, 0x1122334455667788ULL, 8, 0, r) == H_SUCCESS);

    CHECK_ERR(papr_scm_trace_open(m, NULL), PAPR_SCM_NULL_PARAMETER, "path: is NULL");
    CHECK_ERR(papr_scm_trace_open(NULL, "x"), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    CHECK_ERR(papr_scm_trace_open(m, "/nonexistent-dir/trace.txt"), PAPR_SCM_IO, "trace: /nonexistent-dir/trace.txt:");
    snprintf(path, sizeof(path), "%s/papr.trace", dir);
    CHECK(papr_scm_trace_open(m, path) == PAPR_SCM_OK);

    CHECK(call(m, H_SCM_READ_METADATA, drc(0), 256, 8, 0, 0, r) == H_SUCCESS && r[0] == 0x1122334455667788ULL);
    CHECK(call(m, H_SCM_QUERY_BLOCK_MEM_BINDING, drc(0), 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 1, 3, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_HEALTH, drc(1), 0, 0, 0, 0, r) == H_SUCCESS);
    memcpy(vmm.ram + 0x2000, "SCMSTATS\0\0\0\1\0\0\0\0", 16);
    CHECK(call(m, H_SCM_PERFORMANCE_STATS, drc(1), 0x2000, 272, 0, 0, r) == H_SUCCESS);
    vmm.flush_pending_polls = 2;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    uint64_t token = r[0];
    while (call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC)
        ;
    vmm.flush_pending_polls = 0;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_SUCCESS); /* done at once */
    CHECK(papr_scm_inject_health(m, 1, PPC_BIT(6), 0) == PAPR_SCM_OK);
    CHECK(call(m, H_SCM_HEALTH, drc(1), 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(papr_scm_inject_health(m, 1, 0, PPC_BIT(6)) == PAPR_SCM_OK);
    /* A hot-plug, walked and unplugged, and a reset, all in the trace. The
       new device's backing file already holds a label: the trace records
       it after the plug line. */
    memset(vmm.label[2], 0, LABEL);
    memcpy(vmm.label[2] + 512, "PLUGGED!", 8);
    papr_scm_device_config d = device(2, 4 * G, 256 * M);
    CHECK(papr_scm_plug(m, &d) == PAPR_SCM_OK);
    CHECK(call(m, H_SCM_READ_METADATA, drc(2), 512, 8, 0, 0, r) == H_SUCCESS && r[0] == 0x504c554747454421ULL);
    CHECK(acquire_and_configure(m, 2) >= 12);
    papr_scm_effect e;
    bool released;
    CHECK(papr_scm_unplug(m, 2, &released, &e) == PAPR_SCM_OK && !released);
    release(m, 2, &e);
    CHECK(e.kind == PAPR_SCM_EFFECT_RELEASED);
    CHECK(papr_scm_reset_connectors(m, NULL, NULL) == PAPR_SCM_OK);
    CHECK(papr_scm_reset(m, NULL, NULL) == PAPR_SCM_OK);
    /* A load replays as a restore. Its label areas came with the
       migration, as QEMU's RAM: slot 0's label at 256 is gone, another is
       at 1024; the trace replaces the areas it held. */
    size_t len = 0;
    CHECK(papr_scm_save(m, NULL, 0, &len) == PAPR_SCM_BUFFER_TOO_SMALL);
    uint8_t *buf = malloc(len);
    CHECK(papr_scm_save(m, buf, len, &len) == PAPR_SCM_OK);
    memset(vmm.label[0], 0, LABEL);
    memcpy(vmm.label[0] + 1024, "MIGRATED", 8);
    CHECK(papr_scm_load(m, buf, len) == PAPR_SCM_OK);
    free(buf);
    CHECK(call(m, H_SCM_READ_METADATA, drc(0), 256, 8, 0, 0, r) == H_SUCCESS && r[0] == 0);
    CHECK(call(m, H_SCM_READ_METADATA, drc(0), 1024, 8, 0, 0, r) == H_SUCCESS && r[0] == 0x4d49475241544544ULL);
    /* Random hcalls on every device, with junk in the registers. */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 2000; i++) {
        uint64_t a[9];
        for (int j = 0; j < 9; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            a[j] = x;
        }
        static const uint64_t ops[10] = {
            H_SCM_READ_METADATA, H_SCM_WRITE_METADATA, H_SCM_BIND_MEM, H_SCM_UNBIND_MEM,
            H_SCM_QUERY_BLOCK_MEM_BINDING, H_SCM_QUERY_LOGICAL_MEM_BINDING, H_SCM_UNBIND_ALL,
            H_SCM_HEALTH, H_SCM_PERFORMANCE_STATS, H_SCM_FLUSH,
        };
        uint64_t op = ops[a[8] % 10];
        a[0] = (a[7] & 1) ? drc(a[6] % 3) : a[0];
        if (op == H_SCM_PERFORMANCE_STATS)
            a[1] &= 0xFFFFF; /* inside the fake guest memory sometimes */
        int64_t st;
        CHECK(papr_scm_hcall(m, op, a, &st));
    }
    vmm.n_events = 0;
    CHECK(papr_scm_trace_close(m) == PAPR_SCM_OK);
    CHECK(papr_scm_trace_close(m) == PAPR_SCM_OK); /* nothing open */
    CHECK_ERR(papr_scm_trace_close(NULL), PAPR_SCM_NULL_PARAMETER, "m: is NULL");
    papr_scm_machine_free(m);

    /* The qemu profile, with a trace left open at free. */
    m = papr_machine(PAPR_SCM_PROFILE_QEMU);
    snprintf(path, sizeof(path), "%s/qemu.trace", dir);
    CHECK(papr_scm_trace_open(m, path) == PAPR_SCM_OK);
    CHECK(call(m, H_SCM_BIND_MEM, drc(0), 0, 4, (uint64_t)-1, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_UNBIND_ALL, 1, 0, 0, 0, 0, r) == H_SUCCESS);
    CHECK(call(m, H_SCM_QUERY_LOGICAL_MEM_BINDING, 2 * G, 0, 0, 0, 0, r) == H_FUNCTION);
    vmm.flush_pending_polls = 1;
    CHECK(call(m, H_SCM_FLUSH, drc(1), 0, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC);
    token = r[0];
    while (call(m, H_SCM_FLUSH, drc(1), token, 0, 0, 0, r) == H_LONG_BUSY_ORDER_10_MSEC)
        ;
    vmm.flush_pending_polls = 0;
    /* A cold-plugged connector is present; the call is in the trace. */
    uint32_t sense_args[2] = { ENTITY_SENSE, (uint32_t)drc(1) }, sense[2];
    CHECK(rtas1(m, PAPR_SCM_RTAS_GET_SENSOR_STATE, sense_args, 2, sense, 2, NULL) == 0 && sense[1] == 1);
    papr_scm_machine_free(m); /* closes the trace */
}

static void test_panic_boundary(void)
{
    papr_scm_machine *m = papr_machine(PAPR_SCM_PROFILE_PAPR);
    uint64_t r[9] = { drc(0), 0, 8 };
    int64_t st = 777;
    papr_scm_test_panic_next_label_access();
    CHECK(!papr_scm_hcall(m, H_SCM_READ_METADATA, r, &st) && st == 777);
    LAST_ERROR_HAS("panic: test hook: a panic inside the label callback path of slot 0");
    /* The machine refuses everything now, but can be freed. */
    uint64_t r2[9] = { drc(0) };
    CHECK(!papr_scm_hcall(m, H_SCM_HEALTH, r2, &st) && st == 777);
    LAST_ERROR_HAS("caught a panic earlier");
    papr_scm_device_config d = device(2, 4 * G, 256 * M);
    CHECK_ERR(papr_scm_plug(m, &d), PAPR_SCM_PANIC, "caught a panic earlier");
    size_t len;
    CHECK_ERR(papr_scm_save(m, NULL, 0, &len), PAPR_SCM_PANIC, "caught a panic earlier");
    papr_scm_effect e;
    uint32_t args[3] = { ISOLATION_STATE, (uint32_t)drc(0), 1 }, rets[1];
    CHECK(!papr_scm_rtas(m, PAPR_SCM_RTAS_SET_INDICATOR, args, 3, rets, 1, &e));
    papr_scm_machine_free(m);

    /* A panic in a label write with a trace open: the machine refuses the
     * trace's close too, and free still releases everything. */
    m = papr_machine(PAPR_SCM_PROFILE_PAPR);
    CHECK(papr_scm_trace_open(m, "/dev/null") == PAPR_SCM_OK);
    papr_scm_test_panic_next_label_access();
    uint64_t w[9] = { drc(0), 0, 1, 1 };
    CHECK(!papr_scm_hcall(m, H_SCM_WRITE_METADATA, w, &st));
    LAST_ERROR_HAS("panic:");
    CHECK_ERR(papr_scm_trace_close(m), PAPR_SCM_PANIC, "caught a panic earlier");
    papr_scm_machine_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TRACE_DIR\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < SLOTS; i++)
        vmm.label[i] = calloc(1, LABEL);

    test_config_errors();
    papr_scm_machine *m = papr_machine(PAPR_SCM_PROFILE_PAPR);
    test_hcalls(m);
    test_hotplug(m);
    test_cas_and_resets(m);
    test_health_and_node(m);
    test_save_load(m);
    papr_scm_machine_free(m);
    test_qemu_profile();
    test_trace(argv[1]);
    test_panic_boundary();

    for (int i = 0; i < SLOTS; i++)
        free(vmm.label[i]);
    printf("test_capi: %d checks passed\n", checks);
    return 0;
}
