/* TinyCL firmware driver (see tinycl.h). */
#include "tinycl.h"

#define TRY(call)                              \
    do {                                       \
        tinycl_status_t status_ = (call);      \
        if (status_ != TINYCL_OK) return status_; \
    } while (0)

/* STATUS bit 0: busy.  IRQ bit 0: done. */
#define STATUS_BUSY 1u
#define IRQ_DONE 1u

static tinycl_status_t rd(tinycl_t *dev, uint32_t offset, uint32_t *value)
{
    return dev->bus.read32(dev->bus.context, offset, value) ? TINYCL_E_BUS : TINYCL_OK;
}

static tinycl_status_t wr(tinycl_t *dev, uint32_t offset, uint32_t value)
{
    return dev->bus.write32(dev->bus.context, offset, value) ? TINYCL_E_BUS : TINYCL_OK;
}

static int mmio_read(void *context, uint32_t offset, uint32_t *value)
{
    *value = *(volatile uint32_t *)((uintptr_t)context + offset);
    return 0;
}

static int mmio_write(void *context, uint32_t offset, uint32_t value)
{
    *(volatile uint32_t *)((uintptr_t)context + offset) = value;
    return 0;
}

tinycl_bus_t tinycl_mmio_bus(uintptr_t base)
{
    tinycl_bus_t bus;
    bus.context = (void *)base;
    bus.read32 = mmio_read;
    bus.write32 = mmio_write;
    bus.wait_irq = NULL;
    return bus;
}

static tinycl_status_t wait_idle(tinycl_t *dev)
{
    uint32_t status, polls = 0;
    for (;;) {
        TRY(rd(dev, TINYCL_REG_STATUS, &status));
        if (!(status & STATUS_BUSY)) return TINYCL_OK;
        if (dev->max_polls && ++polls > dev->max_polls) return TINYCL_E_TIMEOUT;
    }
}

/* The register map's parameters, as tinycl_map.h has them and the hardware must report. */
static const struct {
    uint32_t offset, value;
} params[] = {
    {TINYCL_REG_ID, TINYCL_PARAM_ID},           {TINYCL_REG_VERSION, TINYCL_PARAM_VERSION},
    {TINYCL_REG_IN_H, TINYCL_PARAM_IN_H},       {TINYCL_REG_IN_W, TINYCL_PARAM_IN_W},
    {TINYCL_REG_IN_C, TINYCL_PARAM_IN_C},       {TINYCL_REG_KERNEL, TINYCL_PARAM_KERNEL},
    {TINYCL_REG_FILTERS, TINYCL_PARAM_FILTERS}, {TINYCL_REG_CLASSES, TINYCL_PARAM_CLASSES},
    {TINYCL_REG_SLOTS, TINYCL_PARAM_SLOTS},     {TINYCL_REG_DATA_WIDTH, TINYCL_PARAM_DATA_WIDTH},
    {TINYCL_REG_FRAC_BITS, TINYCL_PARAM_FRAC_BITS}, {TINYCL_REG_ACC_WIDTH, TINYCL_PARAM_ACC_WIDTH},
    {TINYCL_REG_N_PU, TINYCL_PARAM_N_PU},       {TINYCL_REG_WINDOW, TINYCL_PARAM_WINDOW},
};

tinycl_status_t tinycl_init(tinycl_t *dev, tinycl_bus_t bus)
{
    uint32_t value;
    size_t n;
    dev->bus = bus;
    dev->last_error = TINYCL_ERR_NONE;
    dev->irq_enabled = 0;
    TRY(rd(dev, TINYCL_REG_ID, &value));
    if (value != TINYCL_PARAM_ID) return TINYCL_E_NO_DEVICE;
    for (n = 0; n < sizeof params / sizeof params[0]; n++) {
        TRY(rd(dev, params[n].offset, &value));
        if (value != params[n].value) return TINYCL_E_CONFIG;
    }
    TRY(wait_idle(dev));
    return wr(dev, TINYCL_REG_IRQ_STATUS, IRQ_DONE);
}

/* Issue a command; for one that finishes with the interrupt, wait for it (on the irq line
 * when the bus can, else by polling STATUS). */
static tinycl_status_t command(tinycl_t *dev, uint32_t code)
{
    uint32_t error;
    TRY(wr(dev, TINYCL_REG_IRQ_STATUS, IRQ_DONE));
    TRY(wr(dev, TINYCL_REG_COMMAND, code));
    TRY(rd(dev, TINYCL_REG_ERROR, &error));
    if (error != TINYCL_ERR_NONE) {
        dev->last_error = error;
        return (tinycl_status_t)(TINYCL_E_COMMAND + error);
    }
    if (code != TINYCL_CMD_CLEAR_COUNTERS && dev->irq_enabled && dev->bus.wait_irq &&
        dev->bus.wait_irq(dev->bus.context))
        return TINYCL_E_TIMEOUT;
    return wait_idle(dev);
}

static tinycl_status_t stage(tinycl_t *dev, const uint8_t *pixels)
{
    uint32_t row, col, c;
    for (row = 0; row < TINYCL_PARAM_IN_H; row++) {
        for (col = 0; col < TINYCL_PARAM_IN_W; col++) {
            /* The word of a pixel holds channel c in byte c (STAGING and SAMPLES). */
            uint32_t word = 0;
            const uint8_t *px = pixels + (row * TINYCL_PARAM_IN_W + col) * TINYCL_PARAM_IN_C;
            for (c = 0; c < TINYCL_PARAM_IN_C; c++) word |= (uint32_t)px[c] << (8 * c);
            TRY(wr(dev, TINYCL_STAGING_BASE + (col << TINYCL_STAGING_COL_SHIFT) + (row << TINYCL_STAGING_ROW_SHIFT),
                   word));
        }
    }
    return TINYCL_OK;
}

tinycl_status_t tinycl_insert(tinycl_t *dev, const uint8_t *pixels, uint32_t label, uint32_t *slot)
{
    if (label >= TINYCL_PARAM_CLASSES) return TINYCL_E_ARGUMENT;
    TRY(stage(dev, pixels));
    TRY(wr(dev, TINYCL_REG_LABEL, label));
    TRY(command(dev, TINYCL_CMD_INSERT));
    return rd(dev, TINYCL_REG_RESULT, slot);
}

tinycl_status_t tinycl_train(tinycl_t *dev, uint32_t epochs, int from_scratch)
{
    TRY(wr(dev, TINYCL_REG_EPOCHS, epochs));
    return command(dev, from_scratch ? TINYCL_CMD_TRAIN : TINYCL_CMD_TRAIN_KEEP);
}

tinycl_status_t tinycl_infer(tinycl_t *dev, const uint8_t *pixels, uint32_t *cls, int32_t *logits)
{
    uint32_t o, value;
    TRY(stage(dev, pixels));
    TRY(command(dev, TINYCL_CMD_INFER));
    TRY(rd(dev, TINYCL_REG_RESULT, cls));
    for (o = 0; logits && o < TINYCL_PARAM_CLASSES; o++) {
        TRY(rd(dev, TINYCL_REG_LOGIT0 + 4 * o, &value));
        logits[o] = (int32_t)value;
    }
    return TINYCL_OK;
}

tinycl_status_t tinycl_abort(tinycl_t *dev)
{
    TRY(wr(dev, TINYCL_REG_COMMAND, TINYCL_CMD_ABORT));
    return wait_idle(dev);
}

/* A weight window's word: the flat index n in the golden model's C order taken apart into
 * the window's fields (counts and shifts low field first). */
static uint32_t window_word(uint32_t base, uint32_t n, const uint32_t *counts, const uint32_t *shifts)
{
    uint32_t k, offset = base;
    for (k = 0; k < 4; k++) {
        offset += (n % counts[k]) << shifts[k];
        n /= counts[k];
    }
    return offset;
}

static const uint32_t conv_counts[4] = {TINYCL_CONV_W_J_COUNT, TINYCL_CONV_W_I_COUNT, TINYCL_CONV_W_C_COUNT,
                                        TINYCL_CONV_W_F_COUNT};
static const uint32_t conv_shifts[4] = {TINYCL_CONV_W_J_SHIFT, TINYCL_CONV_W_I_SHIFT, TINYCL_CONV_W_C_SHIFT,
                                        TINYCL_CONV_W_F_SHIFT};
static const uint32_t dense_counts[4] = {TINYCL_DENSE_W_X_COUNT, TINYCL_DENSE_W_Y_COUNT, TINYCL_DENSE_W_F_COUNT,
                                         TINYCL_DENSE_W_O_COUNT};
static const uint32_t dense_shifts[4] = {TINYCL_DENSE_W_X_SHIFT, TINYCL_DENSE_W_Y_SHIFT, TINYCL_DENSE_W_F_SHIFT,
                                         TINYCL_DENSE_W_O_SHIFT};

/* One word of the weights moved by a walk: read into *value, or written from it. */
typedef tinycl_status_t (*word_op_t)(tinycl_t *dev, uint32_t offset, int32_t *value);

static tinycl_status_t read_word(tinycl_t *dev, uint32_t offset, int32_t *value)
{
    uint32_t word;
    TRY(rd(dev, offset, &word));
    *value = (int32_t)word;
    return TINYCL_OK;
}

/* Every weight and bias in the golden model's order through `op`; NULL arrays are skipped. */
static tinycl_status_t walk_weights(tinycl_t *dev, int32_t *conv_w, int32_t *conv_b, int32_t *dense_w,
                                    int32_t *dense_b, word_op_t op)
{
    uint32_t n;
    for (n = 0; conv_w && n < TINYCL_CONV_W_WORDS; n++)
        TRY(op(dev, window_word(TINYCL_CONV_W_BASE, n, conv_counts, conv_shifts), &conv_w[n]));
    for (n = 0; conv_b && n < TINYCL_PARAM_FILTERS; n++) TRY(op(dev, TINYCL_REG_CONV_B0 + 4 * n, &conv_b[n]));
    for (n = 0; dense_w && n < TINYCL_DENSE_W_WORDS; n++)
        TRY(op(dev, window_word(TINYCL_DENSE_W_BASE, n, dense_counts, dense_shifts), &dense_w[n]));
    for (n = 0; dense_b && n < TINYCL_PARAM_CLASSES; n++) TRY(op(dev, TINYCL_REG_DENSE_B0 + 4 * n, &dense_b[n]));
    return TINYCL_OK;
}

tinycl_status_t tinycl_read_weights(tinycl_t *dev, int32_t *conv_w, int32_t *conv_b, int32_t *dense_w,
                                    int32_t *dense_b)
{
    return walk_weights(dev, conv_w, conv_b, dense_w, dense_b, read_word);
}

tinycl_status_t tinycl_read_memory(tinycl_t *dev, uint32_t *size, uint32_t *labels, uint32_t *counts)
{
    uint32_t n;
    TRY(rd(dev, TINYCL_REG_MEM_SIZE, size));
    for (n = 0; labels && n < *size; n++)
        TRY(rd(dev, TINYCL_LABELS_BASE + (n << TINYCL_LABELS_SLOT_SHIFT), &labels[n]));
    for (n = 0; counts && n < TINYCL_PARAM_CLASSES; n++) TRY(rd(dev, TINYCL_REG_CLASS_COUNT0 + 4 * n, &counts[n]));
    return TINYCL_OK;
}

tinycl_status_t tinycl_read_counters(tinycl_t *dev, tinycl_counters_t *counters)
{
    static const uint32_t phases[6] = {TINYCL_REG_CYC_CONV_FWD, TINYCL_REG_CYC_DENSE_FWD, TINYCL_REG_CYC_LOSS,
                                       TINYCL_REG_CYC_DENSE_BWD, TINYCL_REG_CYC_CONV_BWD, TINYCL_REG_CYC_OTHER};
    uint32_t n;
    TRY(rd(dev, TINYCL_REG_CYCLES, &counters->cycles));
    for (n = 0; n < 6; n++) TRY(rd(dev, phases[n], &counters->phase[n]));
    TRY(rd(dev, TINYCL_REG_OPERAND_SETS, &counters->operand_sets));
    TRY(rd(dev, TINYCL_REG_SAMPLE_READS, &counters->sample_reads));
    return rd(dev, TINYCL_REG_TRAIN_SAMPLES, &counters->train_samples);
}

#ifdef TINYCL_REG_LFSR
static tinycl_status_t write_word(tinycl_t *dev, uint32_t offset, int32_t *value)
{
    return wr(dev, offset, (uint32_t)*value);
}

tinycl_status_t tinycl_write_weights(tinycl_t *dev, const int32_t *conv_w, const int32_t *conv_b,
                                     const int32_t *dense_w, const int32_t *dense_b)
{
    /* The walk takes writable pointers for its reads; write_word only reads through them. */
    return walk_weights(dev, (int32_t *)conv_w, (int32_t *)conv_b, (int32_t *)dense_w, (int32_t *)dense_b,
                        write_word);
}

static tinycl_status_t read_sample(tinycl_t *dev, uint32_t slot, uint8_t *pixels)
{
    uint32_t row, col, c, word;
    for (row = 0; row < TINYCL_PARAM_IN_H; row++) {
        for (col = 0; col < TINYCL_PARAM_IN_W; col++) {
            uint8_t *px = pixels + (row * TINYCL_PARAM_IN_W + col) * TINYCL_PARAM_IN_C;
            TRY(rd(dev, TINYCL_SAMPLES_BASE + (col << TINYCL_SAMPLES_COL_SHIFT) + (row << TINYCL_SAMPLES_ROW_SHIFT) +
                            (slot << TINYCL_SAMPLES_SLOT_SHIFT), &word));
            for (c = 0; c < TINYCL_PARAM_IN_C; c++) px[c] = (uint8_t)(word >> (8 * c));
        }
    }
    return TINYCL_OK;
}

static tinycl_status_t idle(tinycl_t *dev)
{
    uint32_t status;
    TRY(rd(dev, TINYCL_REG_STATUS, &status));
    return (status & STATUS_BUSY) ? TINYCL_E_STATE : TINYCL_OK;
}

tinycl_status_t tinycl_save_state(tinycl_t *dev, tinycl_state_t *state)
{
    uint32_t slot;
    TRY(idle(dev));
    TRY(tinycl_read_memory(dev, &state->size, state->labels, NULL));
    for (slot = 0; slot < state->size; slot++) TRY(read_sample(dev, slot, state->pixels[slot]));
    TRY(tinycl_read_weights(dev, state->conv_w, state->conv_b, state->dense_w, state->dense_b));
    TRY(rd(dev, TINYCL_REG_LFSR, &state->lfsr));
    TRY(rd(dev, TINYCL_REG_SEED, &state->seed));
    TRY(rd(dev, TINYCL_REG_LR_SHIFT, &state->lr_shift));
    return rd(dev, TINYCL_REG_EPOCHS, &state->epochs);
}

tinycl_status_t tinycl_load_state(tinycl_t *dev, const tinycl_state_t *state)
{
    uint32_t slot, held;
    if (state->size > TINYCL_PARAM_SLOTS || state->lfsr == 0) return TINYCL_E_ARGUMENT;
    for (slot = 0; slot < state->size; slot++)
        if (state->labels[slot] >= TINYCL_PARAM_CLASSES) return TINYCL_E_ARGUMENT;
    TRY(idle(dev));
    TRY(rd(dev, TINYCL_REG_MEM_SIZE, &held));
    if (held) return TINYCL_E_STATE;
    TRY(wr(dev, TINYCL_REG_SEED, state->seed));
    TRY(wr(dev, TINYCL_REG_LR_SHIFT, state->lr_shift));
    TRY(wr(dev, TINYCL_REG_EPOCHS, state->epochs));
    for (slot = 0; slot < state->size; slot++) {
        uint32_t written;
        TRY(tinycl_insert(dev, state->pixels[slot], state->labels[slot], &written));
        if (written != slot) return TINYCL_E_STATE;
    }
    TRY(tinycl_write_weights(dev, state->conv_w, state->conv_b, state->dense_w, state->dense_b));
    return wr(dev, TINYCL_REG_LFSR, state->lfsr);
}
#endif

tinycl_status_t tinycl_clear_counters(tinycl_t *dev)
{
    return command(dev, TINYCL_CMD_CLEAR_COUNTERS);
}

tinycl_status_t tinycl_irq_enable(tinycl_t *dev, int enable)
{
    TRY(wr(dev, TINYCL_REG_IRQ_ENABLE, enable ? IRQ_DONE : 0u));
    dev->irq_enabled = enable != 0;
    return TINYCL_OK;
}

tinycl_status_t tinycl_irq_pending(tinycl_t *dev, int *pending)
{
    uint32_t value;
    TRY(rd(dev, TINYCL_REG_IRQ_STATUS, &value));
    *pending = (value & IRQ_DONE) != 0;
    return TINYCL_OK;
}

tinycl_status_t tinycl_irq_clear(tinycl_t *dev)
{
    return wr(dev, TINYCL_REG_IRQ_STATUS, IRQ_DONE);
}

const char *tinycl_status_name(tinycl_status_t status)
{
    switch (status) {
    case TINYCL_OK: return "ok";
    case TINYCL_E_BUS: return "bus error";
    case TINYCL_E_NO_DEVICE: return "no TinyCL device";
    case TINYCL_E_CONFIG: return "configuration mismatch";
    case TINYCL_E_TIMEOUT: return "timeout";
    case TINYCL_E_ARGUMENT: return "argument out of range";
    case TINYCL_E_STATE: return "state refused";
    case TINYCL_E_COMMAND: break;
    }
    return (uint32_t)status > TINYCL_E_COMMAND ? "command refused" : "unknown status";
}

const char *tinycl_error_name(uint32_t code)
{
    switch (code) {
    case TINYCL_ERR_NONE: return "NONE";
    case TINYCL_ERR_BUSY: return "BUSY";
    case TINYCL_ERR_BAD_LABEL: return "BAD_LABEL";
    case TINYCL_ERR_BAD_EPOCHS: return "BAD_EPOCHS";
    case TINYCL_ERR_BAD_COMMAND: return "BAD_COMMAND";
    default: return "UNKNOWN";
    }
}

uint32_t tinycl_status_error(tinycl_status_t status)
{
    return (uint32_t)status > TINYCL_E_COMMAND ? (uint32_t)status - TINYCL_E_COMMAND : 0u;
}
