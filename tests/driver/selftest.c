/* The C driver's test program: inserts, trains, infers, reads weights, memory and counters,
 * provokes refusals, and saves the learner, power-cycles the model, restores it and trains
 * on, printing every result for tests/driver/test_driver.py to compare with the golden
 * model.  Samples come from a 32-bit LCG that the test reproduces. */
#include <stdio.h>

#include "tinycl.h"

#define SAMPLES (2 * TINYCL_PARAM_CLASSES)
#define INFERS 3

static uint32_t lcg = 12345u;

static void sample(uint8_t *pixels)
{
    uint32_t n;
    for (n = 0; n < TINYCL_SAMPLE_BYTES; n++) {
        lcg = lcg * 1664525u + 1013904223u;
        pixels[n] = (uint8_t)(lcg >> 24);
    }
}

static void print_array(const char *name, const int32_t *values, uint32_t count)
{
    uint32_t n;
    printf("%s", name);
    for (n = 0; n < count; n++) printf(" %ld", (long)values[n]);
    printf("\n");
}

#define CONV_W TINYCL_CONV_W_WORDS
#define DENSE_W TINYCL_DENSE_W_WORDS

/* The harness's power cycle (tinycl_hdl/flows/native_harness.cpp). */
void tinycl_selftest_power_cycle(void);

static void print_weights(tinycl_t *dev, const char *prefix)
{
    static int32_t conv_w[CONV_W], conv_b[TINYCL_PARAM_FILTERS], dense_w[DENSE_W], dense_b[TINYCL_PARAM_CLASSES];
    static char name[32];
    tinycl_status_t status = tinycl_read_weights(dev, conv_w, conv_b, dense_w, dense_b);
    printf("%sread_weights %s\n", prefix, tinycl_status_name(status));
    sprintf(name, "%sconv_w", prefix);
    print_array(name, conv_w, CONV_W);
    sprintf(name, "%sconv_b", prefix);
    print_array(name, conv_b, TINYCL_PARAM_FILTERS);
    sprintf(name, "%sdense_w", prefix);
    print_array(name, dense_w, DENSE_W);
    sprintf(name, "%sdense_b", prefix);
    print_array(name, dense_b, TINYCL_PARAM_CLASSES);
}

#ifdef TINYCL_REG_LFSR
/* Save, refuse a restore into the full memory, power-cycle, restore, train on. */
static int save_restore(tinycl_t *dev, tinycl_bus_t bus)
{
    static tinycl_state_t state;
    tinycl_status_t status = tinycl_save_state(dev, &state);
    printf("save_state %s %lu %lu\n", tinycl_status_name(status), (unsigned long)state.size,
           (unsigned long)state.lfsr);
    status = tinycl_load_state(dev, &state);
    printf("load_full %s\n", tinycl_status_name(status));
    tinycl_selftest_power_cycle();
    status = tinycl_init(dev, bus);
    printf("reinit %s\n", tinycl_status_name(status));
    if (status != TINYCL_OK) return 1;
    status = tinycl_load_state(dev, &state);
    printf("load_state %s\n", tinycl_status_name(status));
    status = tinycl_train(dev, 1, 0);
    printf("train_on %s\n", tinycl_status_name(status));
    print_weights(dev, "restored_");
    return 0;
}
#endif

int tinycl_selftest(tinycl_bus_t bus)
{
    static tinycl_t dev;
    static uint8_t pixels[TINYCL_SAMPLE_BYTES];
    static int32_t logits[TINYCL_PARAM_CLASSES];
    static uint32_t labels[TINYCL_PARAM_SLOTS], counts[TINYCL_PARAM_CLASSES];
    tinycl_counters_t counters;
    tinycl_status_t status;
    uint32_t n, slot, cls, size;
    int pending;

    dev.max_polls = 0;
    status = tinycl_init(&dev, bus);
    printf("init %s\n", tinycl_status_name(status));
    if (status != TINYCL_OK) return 1;
    tinycl_irq_enable(&dev, 1);
    for (n = 0; n < SAMPLES; n++) {
        sample(pixels);
        status = tinycl_insert(&dev, pixels, n % TINYCL_PARAM_CLASSES, &slot);
        printf("insert %lu %s %ld\n", (unsigned long)n, tinycl_status_name(status),
               slot == TINYCL_NOT_KEPT ? -1L : (long)slot);
    }
    tinycl_irq_pending(&dev, &pending);
    printf("irq_pending %d\n", pending);
    tinycl_irq_clear(&dev);
    tinycl_irq_pending(&dev, &pending);
    printf("irq_cleared %d\n", pending);
    status = tinycl_clear_counters(&dev);
    printf("clear_counters %s\n", tinycl_status_name(status));
    status = tinycl_train(&dev, 1, 1);
    printf("train %s\n", tinycl_status_name(status));
    print_weights(&dev, "");
    status = tinycl_read_memory(&dev, &size, labels, counts);
    printf("memory %s %lu\n", tinycl_status_name(status), (unsigned long)size);
    print_array("labels", (const int32_t *)labels, size);
    print_array("counts", (const int32_t *)counts, TINYCL_PARAM_CLASSES);
    for (n = 0; n < INFERS; n++) {
        sample(pixels);
        status = tinycl_infer(&dev, pixels, &cls, logits);
        printf("infer %lu %s %lu\n", (unsigned long)n, tinycl_status_name(status), (unsigned long)cls);
        print_array("logits", logits, TINYCL_PARAM_CLASSES);
    }
    status = tinycl_read_counters(&dev, &counters);
    printf("counters %s %lu %lu\n", tinycl_status_name(status), (unsigned long)counters.train_samples,
           (unsigned long)counters.cycles);
    /* Refusals: the ERROR code comes back in the status, by name. */
    status = tinycl_train(&dev, 0, 1);
    printf("refused %s %s\n", tinycl_status_name(status), tinycl_error_name(tinycl_status_error(status)));
    status = tinycl_insert(&dev, pixels, TINYCL_PARAM_CLASSES, &slot);
    printf("bad_label %s\n", tinycl_status_name(status));
    for (n = 0; n <= TINYCL_ERR_BAD_COMMAND + 1; n++) printf("error_name %lu %s\n", (unsigned long)n, tinycl_error_name(n));
#ifdef TINYCL_REG_LFSR
    return save_restore(&dev, bus);
#else
    return 0;
#endif
}
