package main

import "syscall"

// childAttr makes a child die with the tool, even on kill -9 of the tool,
// so no redis-server or agora outlives a run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
