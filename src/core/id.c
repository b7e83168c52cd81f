/* id.c - random identifiers: 15 bytes from the kernel's CSPRNG, base64url-encoded. */
#include "id.h"

#include <stdint.h>
#include <uv.h>

void hr_random_id(char out[21])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[15];
    if (uv_random(NULL, NULL, raw, sizeof raw, 0, NULL) != 0) {
        /* getrandom does not fail once the pool is ready; stay unique regardless */
        static _Thread_local uint64_t n;
        uint64_t t = uv_hrtime() ^ (++n << 40);
        for (int i = 0; i < 15; i++)
            raw[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 131);
    }
    for (int i = 0, j = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[j++] = b64url[v >> 18 & 63];
        out[j++] = b64url[v >> 12 & 63];
        out[j++] = b64url[v >> 6 & 63];
        out[j++] = b64url[v & 63];
    }
    out[20] = '\0';
}
