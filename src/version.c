/* SPDX-License-Identifier: MIT */
/* tp_version: the library's version, compiled in from the header that CMake
 * checked against project(VERSION). */
#include "taskpool.h"

TP_API const char *tp_version(void)
{
    return TP_VERSION_STRING;
}
