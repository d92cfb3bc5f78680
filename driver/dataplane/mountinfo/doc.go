// Package mountinfo reads /proc/<pid>/mountinfo, the one place that tells a
// node plugin what is mounted where and from which device, bind mounts and
// device-node mounts included. Paths come back unescaped: the kernel writes a
// space as \040, and a plugin that compares escaped text with a real path
// does not recognise its own mount.
package mountinfo
