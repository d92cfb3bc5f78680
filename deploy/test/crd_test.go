package deploytest

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Minimal local types for the CRD kinds the manifests use (this module has
// no client types for them). Each has exactly the fields the upstream CRD
// defines that deploy/ uses; decodeStrict rejects anything else, so a typo
// such as "expresion:" fails the test the way the API server's schema
// validation would.

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string             `json:"alert,omitempty"`
				Record      string             `json:"record,omitempty"`
				Expr        intstr.IntOrString `json:"expr"`
				For         string             `json:"for,omitempty"`
				Labels      map[string]string  `json:"labels,omitempty"`
				Annotations map[string]string  `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Driver            string            `json:"driver"`
	DeletionPolicy    string            `json:"deletionPolicy"`
	Parameters        map[string]string `json:"parameters,omitempty"`
}

type volumeSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName,omitempty"`
		Source                  struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName,omitempty"`
			VolumeSnapshotContentName *string `json:"volumeSnapshotContentName,omitempty"`
		} `json:"source"`
	} `json:"spec"`
}

type virtualMachine struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		RunStrategy string `json:"runStrategy,omitempty"`
		Template    struct {
			ObjectMeta metav1.ObjectMeta `json:"metadata,omitempty"`
			Spec       struct {
				EvictionStrategy string `json:"evictionStrategy,omitempty"`
				Domain           struct {
					CPU *struct {
						Cores int `json:"cores,omitempty"`
					} `json:"cpu,omitempty"`
					Resources struct {
						Requests corev1.ResourceList `json:"requests,omitempty"`
					} `json:"resources"`
					Devices struct {
						Disks []struct {
							Name string `json:"name"`
							Disk *struct {
								Bus string `json:"bus,omitempty"`
							} `json:"disk,omitempty"`
						} `json:"disks"`
					} `json:"devices"`
				} `json:"domain"`
				Volumes []struct {
					Name                  string                                    `json:"name"`
					PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}
