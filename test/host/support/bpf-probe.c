/*
 * The eBPF operations the agent proofs run (test/host/agent-profiles.test.ts), as plain bpf(2) and perf_event_open(2)
 * calls so that every failure names the syscall and its errno. Each program is "return <verdict>": the proof is that
 * the kernel lets this caller load and attach it, not what it computes. Exit 0 on success, 1 with a message otherwise.
 *
 *   bpf-probe tracepoint CATEGORY NAME TRACEFS   load a tracepoint program, attach it through perf_event_open
 *   bpf-probe raw-tracepoint NAME                 load a raw tracepoint program, attach it with BPF_RAW_TRACEPOINT_OPEN
 *   bpf-probe perf-event                          load a perf_event program, attach it to CPU-clock sampling on CPU 0
 *   bpf-probe xdp IFNAME                          load an XDP program, attach it to IFNAME with a BPF link
 *   bpf-probe sched-cls PIN                       load a tc (sched_cls) program and pin it at PIN for `tc ... object-pinned`
 *   bpf-probe packet IFNAME                       open and bind an AF_PACKET raw socket (packet capture)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  return 1;
}

static long bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

/* r0 = verdict; exit */
static int load(enum bpf_prog_type type, int verdict, enum bpf_attach_type expected) {
  struct bpf_insn insns[2] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = verdict},
      {.code = BPF_JMP | BPF_EXIT},
  };
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = type;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = 2;
  attr.license = (uint64_t)(uintptr_t) "GPL";
  attr.expected_attach_type = expected;
  return (int)bpf(BPF_PROG_LOAD, &attr);
}

static int perf_open(struct perf_event_attr *pe, int cpu) {
  return (int)syscall(__NR_perf_event_open, pe, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static int attach_perf(int prog, int event) {
  if (ioctl(event, PERF_EVENT_IOC_SET_BPF, prog) != 0) return fail("ioctl(PERF_EVENT_IOC_SET_BPF)");
  if (ioctl(event, PERF_EVENT_IOC_ENABLE, 0) != 0) return fail("ioctl(PERF_EVENT_IOC_ENABLE)");
  return 0;
}

static int tracepoint(const char *category, const char *name, const char *tracefs) {
  char path[512];
  snprintf(path, sizeof(path), "%s/events/%s/%s/id", tracefs, category, name);
  FILE *f = fopen(path, "r");
  if (f == NULL) return fail(path);
  unsigned long long id = 0;
  int read = fscanf(f, "%llu", &id);
  fclose(f);
  if (read != 1) {
    fprintf(stderr, "%s: no tracepoint id\n", path);
    return 1;
  }
  int prog = load(BPF_PROG_TYPE_TRACEPOINT, 0, 0);
  if (prog < 0) return fail("bpf(BPF_PROG_LOAD, tracepoint)");
  struct perf_event_attr pe;
  memset(&pe, 0, sizeof(pe));
  pe.type = PERF_TYPE_TRACEPOINT;
  pe.size = sizeof(pe);
  pe.config = id;
  pe.sample_period = 1;
  pe.wakeup_events = 1;
  int event = perf_open(&pe, 0);
  if (event < 0) return fail("perf_event_open(tracepoint)");
  if (attach_perf(prog, event) != 0) return 1;
  printf("attached tracepoint %s/%s (id %llu)\n", category, name, id);
  return 0;
}

static int raw_tracepoint(const char *name) {
  int prog = load(BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0);
  if (prog < 0) return fail("bpf(BPF_PROG_LOAD, raw_tracepoint)");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.raw_tracepoint.name = (uint64_t)(uintptr_t)name;
  attr.raw_tracepoint.prog_fd = (uint32_t)prog;
  if (bpf(BPF_RAW_TRACEPOINT_OPEN, &attr) < 0) return fail("bpf(BPF_RAW_TRACEPOINT_OPEN)");
  printf("attached raw tracepoint %s\n", name);
  return 0;
}

static int perf_event(void) {
  int prog = load(BPF_PROG_TYPE_PERF_EVENT, 0, 0);
  if (prog < 0) return fail("bpf(BPF_PROG_LOAD, perf_event)");
  struct perf_event_attr pe;
  memset(&pe, 0, sizeof(pe));
  pe.type = PERF_TYPE_SOFTWARE;
  pe.size = sizeof(pe);
  pe.config = PERF_COUNT_SW_CPU_CLOCK;
  pe.freq = 1;
  pe.sample_freq = 49;
  int event = perf_open(&pe, 0);
  if (event < 0) return fail("perf_event_open(cpu-clock, cpu 0, all processes)");
  if (attach_perf(prog, event) != 0) return 1;
  printf("attached perf_event sampler on cpu 0\n");
  return 0;
}

static int xdp(const char *ifname) {
  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return fail(ifname);
  int prog = load(BPF_PROG_TYPE_XDP, 2 /* XDP_PASS */, BPF_XDP);
  if (prog < 0) return fail("bpf(BPF_PROG_LOAD, xdp)");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.link_create.prog_fd = prog;
  attr.link_create.target_ifindex = ifindex;
  attr.link_create.attach_type = BPF_XDP;
  if (bpf(BPF_LINK_CREATE, &attr) < 0) return fail("bpf(BPF_LINK_CREATE, xdp)");
  printf("attached xdp to %s\n", ifname);
  return 0;
}

static int sched_cls(const char *pin) {
  int prog = load(BPF_PROG_TYPE_SCHED_CLS, 0 /* TC_ACT_OK */, 0);
  if (prog < 0) return fail("bpf(BPF_PROG_LOAD, sched_cls)");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.pathname = (uint64_t)(uintptr_t)pin;
  attr.bpf_fd = (uint32_t)prog;
  if (bpf(BPF_OBJ_PIN, &attr) != 0) return fail("bpf(BPF_OBJ_PIN)");
  printf("pinned sched_cls at %s\n", pin);
  return 0;
}

static int packet(const char *ifname) {
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (s < 0) return fail("socket(AF_PACKET, SOCK_RAW)");
  struct sockaddr_ll addr;
  memset(&addr, 0, sizeof(addr));
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = (int)if_nametoindex(ifname);
  if (addr.sll_ifindex == 0) return fail(ifname);
  if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) return fail("bind(AF_PACKET)");
  printf("capturing on %s\n", ifname);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "tracepoint") == 0 && argc == 5) return tracepoint(argv[2], argv[3], argv[4]);
  if (strcmp(mode, "raw-tracepoint") == 0 && argc == 3) return raw_tracepoint(argv[2]);
  if (strcmp(mode, "perf-event") == 0 && argc == 2) return perf_event();
  if (strcmp(mode, "xdp") == 0 && argc == 3) return xdp(argv[2]);
  if (strcmp(mode, "sched-cls") == 0 && argc == 3) return sched_cls(argv[2]);
  if (strcmp(mode, "packet") == 0 && argc == 3) return packet(argv[2]);
  fprintf(stderr, "usage: bpf-probe tracepoint CATEGORY NAME TRACEFS | raw-tracepoint NAME | perf-event | xdp IFNAME | sched-cls PIN | packet IFNAME\n");
  return 2;
}
