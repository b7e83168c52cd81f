/* id.h - random identifiers (Engine.IO session ids, Socket.IO socket ids). */
#ifndef HR_CORE_ID_H
#define HR_CORE_ID_H

/* 20 characters of base64url from 120 random bits (what the reference server uses), + NUL. */
void hr_random_id(char out[21]);

#endif
