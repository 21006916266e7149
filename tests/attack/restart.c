/* SPDX-License-Identifier: MIT */
/*
 * tp_control_stop while 8 helpers run until-closed, start again (must be
 * TP_EINVAL: a server starts once), free with one idle helper; prints the
 * thread counts. cc -std=gnu11 -Iinclude tests/attack/restart.c
 * build/libtaskpool.a -lcjson -lpthread -lm (add -fsanitize=thread and
 * build-tsan/libtaskpool.a for TSan, run under setarch -R).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "taskpool.h"
#include "taskpool_control.h"
static long tc(void){FILE*f=fopen("/proc/self/status","r");char l[256];long n=-1;while(fgets(l,256,f))if(sscanf(l,"Threads: %ld",&n)==1)break;fclose(f);return n;}
static int cli(int port,const char*req){int s=socket(AF_INET,SOCK_STREAM,0);struct sockaddr_in a={.sin_family=AF_INET,.sin_port=htons(port)};inet_pton(AF_INET,"127.0.0.1",&a.sin_addr);connect(s,(void*)&a,sizeof a);send(s,req,strlen(req),0);return s;}
int main(void){
  tp_pool*p=tp_pool_new(NULL);
  tp_control*c=tp_control_new_tcp(p,"127.0.0.1","0",NULL);
  long t0=tc();
  printf("start %d\n",tp_control_start(c));
  int port=tp_control_port(c);
  int s[8]; char buf[4096];
  for(int i=0;i<8;i++) s[i]=cli(port,"{}\nuntil-closed\n");
  usleep(300000); printf("threads with 8 until-closed: %ld (base %ld)\n",tc(),t0);
  printf("stop %d (busy helpers)\n",tp_control_stop(c));
  printf("threads after stop: %ld\n",tc());
  printf("start again %d (EINVAL=%d)\n",tp_control_start(c),TP_EINVAL);
  for(int i=0;i<8;i++){ssize_t n=recv(s[i],buf,sizeof buf,0); (void)n; close(s[i]);}
  tp_control_free(c);
  tp_control*c2=tp_control_new_tcp(p,"127.0.0.1","0",NULL);
  tp_control_start(c2); port=tp_control_port(c2);
  int x=cli(port,"{}\nflush\n"); recv(x,buf,sizeof buf,0); usleep(100000); recv(x,buf,sizeof buf,MSG_DONTWAIT);
  usleep(100000); printf("threads with one idle helper: %ld\n",tc());
  close(x); tp_control_free(c2); printf("threads after free (idle helper): %ld\n",tc());
  tp_pool_free(p); return 0;}
