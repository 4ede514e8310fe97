/* A firmware sketch with the TinyCL driver: the accelerator's registers are memory-mapped at
 * TINYCL_BASE; samples arrive from a sensor (sensor_read, the application's), each with its
 * label, and the learner is saved to non-volatile storage (nvm_write, nvm_read) so that a power
 * cycle loses nothing.  Build it with the tinycl_map.h of the configuration in the bitstream;
 * it is C99 and freestanding, like the driver. */
#include "tinycl.h"

#ifndef TINYCL_BASE
#define TINYCL_BASE 0x40000000u
#endif

/* The application's: one sample and its label from the sensor (0 when there is none), and
 * a store that survives power loss (0 on success). */
int sensor_read(uint8_t *pixels, uint32_t *label);
int nvm_read(void *data, size_t size);
int nvm_write(const void *data, size_t size);

static tinycl_t dev;
static uint8_t pixels[TINYCL_SAMPLE_BYTES];
#ifdef TINYCL_REG_LFSR
static tinycl_state_t state;
#endif

/* Learn from the sensor: insert what it gives, retrain every `batch` samples, and keep the
 * learner.  Returns a driver status when something fails. */
tinycl_status_t learn(uint32_t batch)
{
    tinycl_status_t status = tinycl_init(&dev, tinycl_mmio_bus(TINYCL_BASE));
    uint32_t label, slot, seen = 0;
    if (status != TINYCL_OK) return status;
#ifdef TINYCL_REG_LFSR
    /* After a power cycle the memory is empty: restore what was learnt, if anything was. */
    if (nvm_read(&state, sizeof state) == 0 && (status = tinycl_load_state(&dev, &state)) != TINYCL_OK)
        return status;
#endif
    while (sensor_read(pixels, &label)) {
        if ((status = tinycl_insert(&dev, pixels, label, &slot)) != TINYCL_OK) return status;
        if (++seen % batch) continue;
        /* GDumb: retrain from scratch on the class-balanced memory. */
        if ((status = tinycl_train(&dev, 10, 1)) != TINYCL_OK) return status;
#ifdef TINYCL_REG_LFSR
        if ((status = tinycl_save_state(&dev, &state)) != TINYCL_OK) return status;
        nvm_write(&state, sizeof state);
#endif
    }
    return TINYCL_OK;
}

/* Classify one sample with what has been learnt. */
tinycl_status_t classify(const uint8_t *sample, uint32_t *cls)
{
    return tinycl_infer(&dev, sample, cls, NULL);
}
