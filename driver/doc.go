// Package driver is rds-csi's CSI plugin: the identity, controller and node
// services that Kubernetes' sidecars call, built on the RouterOS client in
// driver/rds and the attachment rules in driver/attachment.
//
// The controller turns CSI requests into RDS disks (a volume is a file-backed
// disk exported over NVMe/TCP; a snapshot is an unexported copy of one) and keeps
// the one rule that matters most during an outage: detaching never needs RDS, so
// no VolumeAttachment is left stuck behind a finalizer because the storage box is
// down. Errors are mapped to the gRPC codes the CSI spec asks for, never to a
// blanket Internal, because the sidecars decide whether to retry from the code.
package driver
