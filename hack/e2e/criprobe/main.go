// Command criprobe plays the kubelet's side of CRI v1 against a container
// runtime socket: Version, Status (runtime and network readiness), RuntimeConfig,
// one pod sandbox (the runtime's pause image, its CNI network), one container
// that writes and checksums a file, its exit code and its log, then removes both.
// hack/e2e/kubelet-lane.sh runs it before starting a kubelet, so that a failure
// is placed on the runtime side or the kubelet side. Its own module: cri-api is
// not a dependency of the driver.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: criprobe RUNTIME_SOCKET LOG_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "criprobe: FAILED:", err)
		os.Exit(1)
	}
}

func run(sock, logDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	rt := cri.NewRuntimeServiceClient(conn)
	v, err := rt.Version(ctx, &cri.VersionRequest{})
	if err != nil {
		return fmt.Errorf("Version: %w", err)
	}
	fmt.Printf("Version: %s %s, CRI %s\n", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
	st, err := rt.Status(ctx, &cri.StatusRequest{})
	if err != nil {
		return fmt.Errorf("Status: %w", err)
	}
	for _, c := range st.Status.Conditions {
		fmt.Printf("Status: %s=%v %s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if _, err := rt.RuntimeConfig(ctx, &cri.RuntimeConfigRequest{}); err != nil {
		fmt.Printf("RuntimeConfig: %v\n", err)
	}
	psc := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: "criprobe", Namespace: "default", Uid: fmt.Sprint(time.Now().UnixNano())},
		LogDirectory: logDir,
		Linux:        &cri.LinuxPodSandboxConfig{CgroupParent: "/rds-csi-lane-criprobe"},
	}
	sb, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: psc})
	if err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	fmt.Println("RunPodSandbox:", sb.PodSandboxId)
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := rt.StopPodSandbox(c, &cri.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		fmt.Println("StopPodSandbox:", err)
		_, err = rt.RemovePodSandbox(c, &cri.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		fmt.Println("RemovePodSandbox:", err)
	}()
	ss, err := rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	if err != nil {
		return fmt.Errorf("PodSandboxStatus: %w", err)
	}
	fmt.Printf("PodSandboxStatus: %s ip=%s\n", ss.Status.State, ss.Status.GetNetwork().GetIp())
	cc, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: sb.PodSandboxId, SandboxConfig: psc,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: "probe"},
			Image:    &cri.ImageSpec{Image: "localhost/rds-csi-lane/busybox:1"},
			Command:  []string{"/bin/sh", "-c", "dd if=/dev/zero of=/tmp/x bs=1M count=4 2>/dev/null && sha256sum /tmp/x && id"},
			LogPath:  "probe.log",
			// What the kubelet gives a BestEffort container.
			Linux: &cri.LinuxContainerConfig{Resources: &cri.LinuxContainerResources{OomScoreAdj: 1000}},
		},
	})
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		return fmt.Errorf("StartContainer: %w", err)
	}
	for {
		cs, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: cc.ContainerId})
		if err != nil {
			return fmt.Errorf("ContainerStatus: %w", err)
		}
		if cs.Status.State == cri.ContainerState_CONTAINER_EXITED {
			fmt.Printf("ContainerStatus: exited %d %s\n", cs.Status.ExitCode, cs.Status.Reason)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	b, err := os.ReadFile(logDir + "/probe.log")
	if err != nil {
		return err
	}
	fmt.Printf("log:\n%s", b)
	_, err = rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: cc.ContainerId})
	fmt.Println("RemoveContainer:", err)
	return nil
}
