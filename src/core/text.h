/* text.h - small text helpers shared by the parsers: hex digits and percent-decoding. */
#ifndef HR_CORE_TEXT_H
#define HR_CORE_TEXT_H

#include <stddef.h>

/* The value of one hex digit (0-9, a-f, A-F), or -1. */
int hr_hex_value(char c);

#endif
