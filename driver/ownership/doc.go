// Package ownership decides which RDS disks and files belong to this driver.
//
// RDS is shared: its pool also holds hand-made disks, backups and other
// clusters' volumes, some with names that look like ours. A slot name proves
// nothing, so ownership is decided by the one thing that cannot collide by
// accident: a disk is the driver's only if it is a file disk whose slot has
// one of the driver's shapes and whose file path is exactly
// <an allowed base path>/<slot>.img. Not a prefix, not a pattern: the whole
// path, compared as a string. Everything else does not exist for the driver:
// it is never listed, adopted, copied, resized or deleted.
package ownership
