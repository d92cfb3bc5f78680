// Package keylock serialises operations per key (a volume, a snapshot, a
// backing file): one holder per key at a time. Callers that must not queue
// behind a slow backend (CSI calls, which the sidecars and the kubelet retry)
// use TryLock and answer ABORTED; callers that must wait (the loop data
// plane's attach of one file) use Lock, bounded by their context.
//
// An entry exists only while a key is held or waited for, so a node or
// controller that has seen millions of volumes holds no memory for them.
package keylock
