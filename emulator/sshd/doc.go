// Package sshd is the emulator's SSH front door, shaped like RouterOS's own: keys
// only, exec and interactive shell sessions, the `[user@identity] > ` prompt
// (`[user@identity] /disk> ` inside a menu),
// login-name options such as admin+ct512w, and a flat refusal of global requests
// like keepalive@openssh.com.
//
// It knows nothing about disks. Each login gets a Runner from the Config, and the
// server only moves bytes between the SSH channel and that Runner. Crash support
// (drop every connection, stop listening, come back on the same address) lives
// here because only the server holds the listener and the connections.
package sshd
