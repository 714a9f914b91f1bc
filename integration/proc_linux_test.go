package integration

import "syscall"

// childProcAttr makes a broker die with the test process, so an aborted
// run leaves no replica polling Redis.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
