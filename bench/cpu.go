package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of CPU times in /proc (USER_HZ, 100 on every
// Linux architecture Go runs on).
const clockTick = 10 * time.Millisecond

// procStat is the part of /proc/PID/stat the CPU accounting needs.
type procStat struct {
	ppid int
	// cpu is utime+stime+cutime+cstime: the process's own CPU and that
	// of its children it has waited for (proc(5)).
	cpu time.Duration
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name is in parentheses and may hold spaces; fields
	// resume after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 { // f[0] is field 3 (state)
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	var ticks int64
	for _, s := range f[11:15] { // fields 14-17: utime stime cutime cstime
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * clockTick}, true
}

// TreeCPU returns the CPU time used so far by the processes rooted at
// roots and all their descendants, counting children that exited and were
// reaped (a Postfix smtpd that served its connections and left). A
// descendant that exited unreaped, or whose parent died, is missed; the
// MTAs measured here reap their children.
func TreeCPU(roots ...int) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok {
			stats[pid] = st
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	var total time.Duration
	seen := map[int]bool{}
	var stack []int
	for _, r := range roots {
		if r > 0 { // pid 0's "children" are init and kthreadd: the whole machine
			stack = append(stack, r)
		}
	}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		total += stats[pid].cpu
		stack = append(stack, children[pid]...)
	}
	return total
}

// selfCPU is this process's user plus system CPU time (getrusage).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
