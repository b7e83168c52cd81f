/* array.h - growable arrays of any element type: capacity doubles from a small start, so an
 * append costs O(1) amortized. The array is three fields of the owner (items, count,
 * capacity) rather than a struct of its own, so existing structs keep their layout. */
#ifndef HR_CORE_ARRAY_H
#define HR_CORE_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Make room for need elements of elem_size bytes: *(void **)items is the array, *cap its
 * capacity in elements, the new capacity min (at least 1) or more doubled. Returns 0, or
 * HR_ENOMEM (need too large, or no memory) with the array and *cap unchanged. Use the macros. */
int hr_array_reserve_(void *items, uint32_t *cap, size_t need, size_t elem_size, uint32_t min);

/* Room for need elements in a (a T * lvalue) with capacity cap (a uint32_t lvalue). */
#define HR_ARRAY_RESERVE(a, cap, need, min)                                                        \
    hr_array_reserve_(&(a), &(cap), (need), sizeof(*(a)), (min))

/* The next free element of a (count n, capacity cap; n is incremented), or NULL when out of
 * memory. The element is not initialised. */
#define HR_ARRAY_PUSH(a, n, cap, min)                                                              \
    (HR_ARRAY_RESERVE(a, cap, (size_t)(n) + 1, min) < 0 ? NULL : &(a)[(n)++])

/* Free the array and zero its count and capacity. */
#define HR_ARRAY_FREE(a, n, cap) (free(a), (a) = NULL, (n) = 0, (cap) = 0)

#endif
