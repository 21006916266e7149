#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds tests/attack/attack_server against build/libtaskpool.a (configure
# and build the tree first with -DTP_WITH_CONTROL=ON).
set -e
cd "$(dirname "$0")/../.."
cc -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude \
    tests/attack/attack_server.c build/libtaskpool.a -lcjson -lpthread -lm \
    -o build/attack_server
echo build/attack_server
