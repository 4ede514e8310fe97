// Native harness of the TinyCL top: Verilator's model clocked in C++, driven over a pipe.
//
// The host side (tinycl_hdl.host.native.NativeTransport) writes requests on standard
// input and reads one reply per request on standard output.  Every multi-byte field is
// little-endian.
//
//   'W' addr:u32 data:u32                 -> resp:u8
//   'M' count:u32 (addr:u32 data:u32)*n   -> resp:u8 (the first non-OKAY, else OKAY)
//   'R' addr:u32                          -> resp:u8 data:u32
//   'I' max_cycles:u64                    -> irq:u8 waited:u64   (clocks until irq is high)
//   'C'                                   -> cycles:u64          (clock cycles since start)
//   'Z'                                   -> counted:u8          (coverage counts zeroed; 0: none built in)
//   'Q'                                   -> (none; the waveform is closed, the process exits)
//
// A bus access drives the AXI4-Lite pins as a master does: AW and W together, B and R
// accepted at once.  Inputs change after the falling edge and outputs are sampled before
// the rising edge, as the cocotb testbenches do.
//
// The model is the wrapper ``tinycl_native`` (``tinycl_hdl.flows.native.wrapper``): the
// ``tinycl`` top with its reset held for the first three cycles by the wrapper, so that no
// top-level input feeds every register's next-state logic.
//
// Arguments: [--fst FILE] writes the waveform (a model built with --trace-fst);
// [--coverage FILE] writes Verilator's coverage counts as the harness exits (a model built
// with --coverage-toggle), and the request 'Z' zeroes them, so that they count one window.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unistd.h>

#include "Vtinycl.h"
#include "verilated.h"
#if VM_TRACE_FST
#include "verilated_fst_c.h"
#endif
#if VM_COVERAGE
#include "verilated_cov.h"
#endif

namespace {

std::unique_ptr<VerilatedContext> context;
std::unique_ptr<Vtinycl> top;
#if VM_TRACE_FST
std::unique_ptr<VerilatedFstC> wave;
#endif
uint64_t cycles = 0;
uint64_t time_ps = 0;
const uint64_t access_limit = 1 << 20;   // cycles a bus access may take before the harness gives up

void dump() {
#if VM_TRACE_FST
    if (wave) wave->dump(time_ps);
#endif
    time_ps += 5000;                     // a 100 MHz clock: half a period per evaluation
}

// Evaluate the inputs set while the clock is low, then one rising and one falling edge.
void settle() { top->eval(); }
void cycle() {
    top->clk = 1; top->eval(); dump();
    top->clk = 0; top->eval(); dump();
    cycles++;
}

bool read_exact(void* buffer, size_t size) {
    auto* p = static_cast<uint8_t*>(buffer);
    while (size) {
        ssize_t got = read(0, p, size);
        if (got <= 0) return false;
        p += got; size -= got;
    }
    return true;
}

uint8_t out_buffer[1 << 16];
size_t out_used = 0;
void put(const void* data, size_t size) { memcpy(out_buffer + out_used, data, size); out_used += size; }
void flush() {
    size_t done = 0;
    while (done < out_used) {
        ssize_t n = write(1, out_buffer + done, out_used - done);
        if (n <= 0) exit(2);
        done += n;
    }
    out_used = 0;
}

uint8_t bus_write(uint32_t addr, uint32_t data) {
    top->s_axil_awaddr = addr; top->s_axil_awprot = 0; top->s_axil_awvalid = 1;
    top->s_axil_wdata = data; top->s_axil_wstrb = 0xF; top->s_axil_wvalid = 1;
    top->s_axil_bready = 1;
    for (uint64_t n = 0; n < access_limit; n++) {
        settle();
        bool aw = top->s_axil_awvalid && top->s_axil_awready;
        bool w = top->s_axil_wvalid && top->s_axil_wready;
        bool b = top->s_axil_bvalid;
        uint8_t resp = top->s_axil_bresp;
        cycle();
        if (aw) top->s_axil_awvalid = 0;
        if (w) top->s_axil_wvalid = 0;
        if (b) { top->s_axil_bready = 0; return resp; }
    }
    fprintf(stderr, "harness: no write response for 0x%x\n", addr);
    exit(3);
}

uint8_t bus_read(uint32_t addr, uint32_t* data) {
    top->s_axil_araddr = addr; top->s_axil_arprot = 0; top->s_axil_arvalid = 1; top->s_axil_rready = 1;
    for (uint64_t n = 0; n < access_limit; n++) {
        settle();
        bool ar = top->s_axil_arvalid && top->s_axil_arready;
        bool r = top->s_axil_rvalid;
        uint8_t resp = top->s_axil_rresp;
        *data = top->s_axil_rdata;
        cycle();
        if (ar) top->s_axil_arvalid = 0;
        if (r) { top->s_axil_rready = 0; return resp; }
    }
    fprintf(stderr, "harness: no read response for 0x%x\n", addr);
    exit(3);
}

}  // namespace

#ifdef TINYCL_DRIVER_SELFTEST
// The C driver's test: the program `tinycl_selftest` (C, linked in) runs on the model through
// the driver's accessor pair; its output goes to standard output.
#include "tinycl.h"
extern "C" int tinycl_selftest(tinycl_bus_t bus);

namespace {
int driver_read(void*, uint32_t offset, uint32_t* value) { return bus_read(offset, value); }
int driver_write(void*, uint32_t offset, uint32_t value) { return bus_write(offset, value); }
int driver_wait_irq(void*) {
    settle();
    for (uint64_t n = 0; n < (1ull << 32) && !top->irq; n++) cycle();
    return top->irq ? 0 : 1;
}
}  // namespace

void power_on() {
    top = std::make_unique<Vtinycl>(context.get(), "tinycl");
    top->clk = 0;
    settle();
    for (int n = 0; n < 3; n++) cycle();      // the wrapper's power-on reset
}

// The self-test's power cycle: a fresh model, every register and memory at its reset value.
extern "C" void tinycl_selftest_power_cycle(void) {
    top->final();
    top.reset();
    power_on();
}

int main(int, char**) {
    context = std::make_unique<VerilatedContext>();
    power_on();
    tinycl_bus_t bus = {nullptr, driver_read, driver_write, driver_wait_irq};
    int code = tinycl_selftest(bus);
    printf("cycles %llu\n", (unsigned long long)cycles);
    top->final();
    return code;
}
#else
int main(int argc, char** argv) {
    context = std::make_unique<VerilatedContext>();
    const char* fst = nullptr;
    const char* coverage = nullptr;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--fst")) fst = argv[i + 1];
        if (!strcmp(argv[i], "--coverage")) coverage = argv[i + 1];
    }
#if !VM_COVERAGE
    if (coverage) { fprintf(stderr, "harness: built without coverage\n"); return 1; }
#endif
    top = std::make_unique<Vtinycl>(context.get(), "tinycl");
#if VM_TRACE_FST
    if (fst) {
        context->traceEverOn(true);
        wave = std::make_unique<VerilatedFstC>();
        top->trace(wave.get(), 99);
        wave->open(fst);
    }
#else
    if (fst) { fprintf(stderr, "harness: built without --trace-fst\n"); return 1; }
#endif
    top->clk = 0;
    settle();
    for (int n = 0; n < 3; n++) cycle();      // the wrapper's power-on reset
    cycles = 0;
    for (;;) {
        uint8_t op;
        if (!read_exact(&op, 1)) break;
        if (op == 'W') {
            uint32_t f[2];
            if (!read_exact(f, 8)) break;
            uint8_t resp = bus_write(f[0], f[1]);
            put(&resp, 1);
        } else if (op == 'M') {
            uint32_t count, f[2];
            if (!read_exact(&count, 4)) break;
            uint8_t first = 0;
            for (uint32_t i = 0; i < count; i++) {
                if (!read_exact(f, 8)) return 1;
                uint8_t resp = bus_write(f[0], f[1]);
                if (resp && !first) first = resp;
            }
            put(&first, 1);
        } else if (op == 'R') {
            uint32_t addr, data;
            if (!read_exact(&addr, 4)) break;
            uint8_t resp = bus_read(addr, &data);
            put(&resp, 1); put(&data, 4);
        } else if (op == 'I') {
            uint64_t limit, waited = 0;
            if (!read_exact(&limit, 8)) break;
            settle();
            while (!top->irq && waited < limit) { cycle(); waited++; }
            uint8_t irq = top->irq;
            put(&irq, 1); put(&waited, 8);
        } else if (op == 'C') {
            put(&cycles, 8);
        } else if (op == 'Z') {
#if VM_COVERAGE
            context->coveragep()->zero();
#endif
            uint8_t counted = VM_COVERAGE;
            put(&counted, 1);
        } else if (op == 'Q') {
            break;
        } else {
            fprintf(stderr, "harness: unknown request 0x%02x\n", op);
            return 1;
        }
        flush();
    }
    top->final();
#if VM_COVERAGE
    if (coverage) context->coveragep()->write(coverage);
#endif
#if VM_TRACE_FST
    if (wave) wave->close();
#endif
    return 0;
}
#endif
