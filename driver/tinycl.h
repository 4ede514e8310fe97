/* TinyCL firmware driver: C99, freestanding (stdint.h and stddef.h only), no allocation.
 *
 * The driver is compiled for one configuration: it includes the generated tinycl_map.h
 * (`tinycl generate` writes it beside the Verilog) for the register offsets, the window
 * layout and the parameters the hardware must report.  Every register access goes through
 * the accessor pair of `tinycl_bus_t`, so the same code runs on memory-mapped hardware
 * (`tinycl_mmio_bus`), over a bridge, or against a simulation.
 */
#ifndef TINYCL_H
#define TINYCL_H

#include <stddef.h>
#include <stdint.h>

#include "tinycl_map.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a driver call returns.  TINYCL_OK is 0; a refused command adds its ERROR code to
 * TINYCL_E_COMMAND (tinycl_status_error gives it back). */
typedef enum {
    TINYCL_OK = 0,
    TINYCL_E_BUS = 1,        /* the bus answered an error (SLVERR or DECERR) */
    TINYCL_E_NO_DEVICE = 2,  /* ID is not "TCL1" */
    TINYCL_E_CONFIG = 3,     /* a generator parameter differs from tinycl_map.h's */
    TINYCL_E_TIMEOUT = 4,    /* still busy after the poll limit */
    TINYCL_E_ARGUMENT = 5,   /* an argument out of range (label, class, index, a state's field) */
    TINYCL_E_STATE = 6,      /* save or restore refused: busy, or a restore into a non-empty memory */
    TINYCL_E_COMMAND = 16    /* + ERROR code: the accelerator refused the command */
} tinycl_status_t;

/* The accessor pair: read or write the 32-bit register at a byte offset.  Each returns 0,
 * or non-zero when the bus answered an error. */
typedef struct {
    void *context;
    int (*read32)(void *context, uint32_t offset, uint32_t *value);
    int (*write32)(void *context, uint32_t offset, uint32_t value);
    /* Optional: wait until the irq line is high (return 0), or NULL to poll STATUS. */
    int (*wait_irq)(void *context);
} tinycl_bus_t;

typedef struct {
    tinycl_bus_t bus;
    uint32_t max_polls;      /* STATUS polls before TINYCL_E_TIMEOUT; 0: no limit */
    uint32_t last_error;     /* ERROR of the last refused command */
    int irq_enabled;         /* set by tinycl_irq_enable: commands then wait with bus.wait_irq */
} tinycl_t;

/* The performance counters (CLEAR_COUNTERS zeroes them). */
typedef struct {
    uint32_t cycles;
    uint32_t phase[6];       /* CONV_FWD, DENSE_FWD, LOSS, DENSE_BWD, CONV_BWD, OTHER */
    uint32_t operand_sets;
    uint32_t sample_reads;
    uint32_t train_samples;
} tinycl_counters_t;

#define TINYCL_SAMPLE_BYTES (TINYCL_PARAM_IN_H * TINYCL_PARAM_IN_W * TINYCL_PARAM_IN_C)
#define TINYCL_CONV_W_WORDS \
    (TINYCL_CONV_W_F_COUNT * TINYCL_CONV_W_C_COUNT * TINYCL_CONV_W_I_COUNT * TINYCL_CONV_W_J_COUNT)
#define TINYCL_DENSE_W_WORDS \
    (TINYCL_DENSE_W_O_COUNT * TINYCL_DENSE_W_F_COUNT * TINYCL_DENSE_W_Y_COUNT * TINYCL_DENSE_W_X_COUNT)
#define TINYCL_NOT_KEPT 0xFFFFFFFFu

/* A bus on memory-mapped registers at `base` (volatile 32-bit accesses; no bus errors seen). */
tinycl_bus_t tinycl_mmio_bus(uintptr_t base);

/* Identify: ID, VERSION and every generator parameter against tinycl_map.h, then wait until
 * idle (the serial datapath clears its memory after reset) and clear the interrupt. */
tinycl_status_t tinycl_init(tinycl_t *dev, tinycl_bus_t bus);

/* Stage an [H][W][C] sample (TINYCL_SAMPLE_BYTES bytes) and offer it to the GDumb memory;
 * *slot is the slot written or TINYCL_NOT_KEPT. */
tinycl_status_t tinycl_insert(tinycl_t *dev, const uint8_t *pixels, uint32_t label, uint32_t *slot);
/* TRAIN (from_scratch) or TRAIN_KEEP for `epochs` passes; returns when it has finished. */
tinycl_status_t tinycl_train(tinycl_t *dev, uint32_t epochs, int from_scratch);
/* INFER: the class of one sample; logits (TINYCL_PARAM_CLASSES values) if non-NULL. */
tinycl_status_t tinycl_infer(tinycl_t *dev, const uint8_t *pixels, uint32_t *cls, int32_t *logits);
/* ABORT a running TRAIN or INFER and wait until idle. */
tinycl_status_t tinycl_abort(tinycl_t *dev);

/* Weights in the golden model's order: conv_w[f][c][i][j], conv_b[f], dense_w[o][f][y][x],
 * dense_b[o].  Any pointer may be NULL. */
tinycl_status_t tinycl_read_weights(tinycl_t *dev, int32_t *conv_w, int32_t *conv_b, int32_t *dense_w,
                                    int32_t *dense_b);
/* The GDumb memory: *size samples held; labels[slot] and counts[class] if non-NULL. */
tinycl_status_t tinycl_read_memory(tinycl_t *dev, uint32_t *size, uint32_t *labels, uint32_t *counts);
tinycl_status_t tinycl_read_counters(tinycl_t *dev, tinycl_counters_t *counters);
tinycl_status_t tinycl_clear_counters(tinycl_t *dev);

#ifdef TINYCL_REG_LFSR
/* Save and restore, where the register map has them (the lane array's; TINYCL_REG_LFSR is
 * then defined).  The learner's whole state, in the golden model's order; about
 * TINYCL_PARAM_SLOTS * TINYCL_SAMPLE_BYTES bytes, so give it static storage. */
typedef struct {
    int32_t conv_w[TINYCL_CONV_W_WORDS];
    int32_t conv_b[TINYCL_PARAM_FILTERS];
    int32_t dense_w[TINYCL_DENSE_W_WORDS];
    int32_t dense_b[TINYCL_PARAM_CLASSES];
    uint32_t size;                                   /* slots in use */
    uint32_t labels[TINYCL_PARAM_SLOTS];
    uint8_t pixels[TINYCL_PARAM_SLOTS][TINYCL_SAMPLE_BYTES];
    uint32_t lfsr, seed, lr_shift, epochs;           /* the LFSR state and the workload registers */
} tinycl_state_t;

/* Write every weight and bias (raw fixed-point values) while idle; a value that does not fit
 * the data format answers a bus error.  Trained weights go in this way. */
tinycl_status_t tinycl_write_weights(tinycl_t *dev, const int32_t *conv_w, const int32_t *conv_b,
                                     const int32_t *dense_w, const int32_t *dense_b);
/* Read the whole state of an idle accelerator. */
tinycl_status_t tinycl_save_state(tinycl_t *dev, tinycl_state_t *state);
/* Put a state back into an idle accelerator whose GDumb memory is empty (after a reset;
 * else TINYCL_E_STATE, nothing written): the registers, the slots replayed as INSERTs in
 * slot order, the weights, and last the LFSR.  Training then continues as if never stopped. */
tinycl_status_t tinycl_load_state(tinycl_t *dev, const tinycl_state_t *state);
#endif

/* The interrupt: IRQ_STATUS bit 0 is set when INSERT, TRAIN, TRAIN_KEEP or INFER finishes. */
tinycl_status_t tinycl_irq_enable(tinycl_t *dev, int enable);
tinycl_status_t tinycl_irq_pending(tinycl_t *dev, int *pending);
tinycl_status_t tinycl_irq_clear(tinycl_t *dev);

/* Readable names: of a status, and of an ERROR register code. */
const char *tinycl_status_name(tinycl_status_t status);
const char *tinycl_error_name(uint32_t code);
/* The ERROR code inside a TINYCL_E_COMMAND + code status (0 for any other). */
uint32_t tinycl_status_error(tinycl_status_t status);

#ifdef __cplusplus
}
#endif

#endif
