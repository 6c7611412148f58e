/* rng.c: seeded generators. Everything random in training (initial weights, the shuffle
 * order, dropout masks) derives from the seed and a stream number, never from the order in
 * which threads ran, so a rerun or a resumed run draws the same numbers. */
#include <math.h>

#include "tensor-internal.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tensor__rng_seed(struct tensor_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = tensor__mix64(seed, stream);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&st);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t tensor__rng_next(struct tensor_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tensor__rng_uniform(struct tensor_rng *r)
{
    return (double)(tensor__rng_next(r) >> 11) * 0x1.0p-53;
}

double tensor__rng_normal(struct tensor_rng *r)
{
    double u1 = 1.0 - tensor__rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = tensor__rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t tensor__rng_below(struct tensor_rng *r, uint64_t n)
{
    /* Rejection keeps it unbiased: drop draws from the incomplete last block. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = tensor__rng_next(r);
    while (x >= limit);
    return x % n;
}
