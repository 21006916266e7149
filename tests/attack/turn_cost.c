/* SPDX-License-Identifier: MIT */
/*
 * How long one turn of the control thread takes when one session's read
 * holds 64 KiB of pipelined request lines and its socket takes every
 * answer (8 MB buffers): drives the loop by hand (tp__ctl_manual_*).
 *
 *   cc -std=gnu11 -O1 -Iinclude -Icontrol tests/attack/turn_cost.c \
 *       build/libtaskpool.a -lcjson -lpthread -lm -o build/turn_cost
 *   build/turn_cost num-running; build/turn_cost x
 *
 * To measure an older session.c, compile it to an object and link it
 * before the archive (its symbols then replace the archive's session.o).
 */
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include "taskpool.h"
#include "taskpool_control.h"
#include "server.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  const char *l = argc>1?argv[1]:"num-running";
  size_t ll=strlen(l)+1, n=65000/ll;
  tp_pool*p=tp_pool_new(NULL); tp_control*c=tp_control_new_tcp(p,"127.0.0.1","0",NULL);
  tp__ctl_manual_open(c); int a[2]; socketpair(AF_UNIX,SOCK_STREAM|SOCK_NONBLOCK,0,a);
  int big=8<<20; setsockopt(a[0],SOL_SOCKET,SO_SNDBUF,&big,sizeof big); setsockopt(a[1],SOL_SOCKET,SO_RCVBUF,&big,sizeof big);
  tp__ctl_manual_adopt(c,a[0]);
  send(a[1],"{}\n",3,0); tp__ctl_manual_turn(c,100); char buf[1<<16]; while(recv(a[1],buf,sizeof buf,MSG_DONTWAIT)>0);
  char*req=malloc(n*ll); for(size_t i=0;i<n;i++){memcpy(req+i*ll,l,ll-1);req[i*ll+ll-1]='\n';}
  send(a[1],req,n*ll,0);
  double worst=0,total=0; int turns=0; size_t got=0;
  while(got<n && turns<100000){double t=now(); tp__ctl_manual_turn(c,100); double d=now()-t; total+=d; if(d>worst)worst=d; turns++;
    ssize_t r; while((r=recv(a[1],buf,sizeof buf,MSG_DONTWAIT))>0) for(ssize_t i=0;i<r;i++) got+=buf[i]=='\n';}
  printf("%zu x '%s': %d turns, longest turn %.2f ms, all %.2f ms, answers %zu\n",n,l,turns,worst*1e3,total*1e3,got);
  return 0;}
