/* Derives scoring.rs's RCP_STEPS: where vrndscalepd(vrcp14pd(m), 1/32) steps down, for a
 * mantissa m in [1, 2), around each midpoint 64 / (2j + 1). SVML's log (numpy's np.log on
 * AVX-512) starts from that rounded reciprocal. Needs an AVX-512 CPU:
 *   gcc -O2 -mavx512f -o /tmp/rcp scripts/oracle/svml_rcp_steps.c && /tmp/rcp
 * Prints the 16 thresholds (ascending) and checks the step rule on 200 million random
 * mantissas and on every 20-bit mantissa prefix (0 violations expected). */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static double rounded_rcp(uint64_t bits) {
    double x, out[8];
    memcpy(&x, &bits, 8);
    _mm512_storeu_pd(out, _mm512_roundscale_pd(_mm512_rcp14_pd(_mm512_set1_pd(x)), 0x58));
    return out[0];
}

int main(void) {
    uint64_t steps[16];
    for (int j = 31; j >= 16; j--) {
        double m0 = 64.0 / (2 * j + 1), upper = (2.0 * j + 2) / 64.0;
        uint64_t b0, lo, hi;
        memcpy(&b0, &m0, 8);
        lo = b0 - (1ULL << 42);
        hi = b0 + (1ULL << 42);
        while (hi - lo > 1) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (rounded_rcp(mid) == upper) lo = mid; else hi = mid;
        }
        steps[31 - j] = hi;
        printf("0x%016llx,\n", (unsigned long long)hi);
    }
    long bad = 0;
    uint64_t s = 88172645463325252ULL;
    for (long i = 0; i < 200000000; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        uint64_t b = i < (1 << 20) ? 0x3ff0000000000000ULL | ((uint64_t)i << 32)
                                   : 0x3ff0000000000000ULL | (s & 0xfffffffffffffULL);
        int below = 0;
        for (int k = 0; k < 16; k++) below += steps[k] <= b;
        if (rounded_rcp(b) != (32 - below) / 32.0) bad++;
    }
    printf("violations: %ld\n", bad);
    return bad != 0;
}
