/* array.c - the growth step of core/array.h's arrays. */
#include "array.h"

#include <string.h>

#include "error.h"

int hr_array_reserve_(void *items, uint32_t *cap, size_t need, size_t elem_size, uint32_t min)
{
    if (need <= *cap)
        return 0;
    if (need > UINT32_MAX || need > SIZE_MAX / elem_size)
        return HR_ENOMEM;
    size_t ncap = *cap ? *cap : (min ? min : 1);
    while (ncap < need)
        ncap = ncap > UINT32_MAX / 2 ? need : ncap * 2;
    if (ncap > SIZE_MAX / elem_size)
        ncap = need;
    /* items is a T **: read and write the pointer through memcpy (no T ** to void ** cast) */
    void *old, *p;
    memcpy(&old, items, sizeof old);
    p = realloc(old, ncap * elem_size);
    if (!p)
        return HR_ENOMEM;
    memcpy(items, &p, sizeof p);
    *cap = (uint32_t)ncap;
    return 0;
}
