// Package deploytest renders deploy/kubernetes (kustomize's Go API) and
// deploy/helm/rds-csi (Helm's Go library), decodes every object strictly into
// client-go types and checks the invariants an install depends on. It lives
// in its own module so that kustomize and Helm stay out of the driver's.
package deploytest
