package webhook

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// identity is the user and group the injector runs as. nil fields are left
// unset in its securityContext: they come from the Pod, or the image.
type identity struct {
	uid, gid *int64
}

// checkPod finds what would keep the injected Pod from ever starting, or
// its apps from reading the files, and denies it with the fix; where the
// fix is unambiguous (the injector must run as the apps' user) it applies
// it instead. It returns the injector's identity and warnings for what it
// cannot know (a user set only by an image).
func checkPod(pod *corev1.Pod, p plan, targets map[string]bool) (identity, []string, error) {
	var errs []error
	var warnings []string
	all := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)

	// The secrets mount must not collide with the targets' own mounts. The
	// mountpoint of a nested mount is created inside the outer one, which
	// fails in a read-only outer mount (ConfigMap, Secret, projected...)
	// and in the read-only secrets volume itself.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, c := range all {
		if !targets[c.Name] {
			continue
		}
		for _, m := range c.VolumeMounts {
			switch {
			case m.MountPath == p.secretsPath:
				errs = append(errs, fmt.Errorf("container %q already mounts %s; choose another %s", c.Name, p.secretsPath, AnnotationSecretsPath))
			case nested(m.MountPath, p.secretsPath) && len(m.MountPath) > len(p.secretsPath):
				errs = append(errs, fmt.Errorf("container %q mounts %s inside the read-only secrets directory %s; choose another %s", c.Name, m.MountPath, p.secretsPath, AnnotationSecretsPath))
			case nested(m.MountPath, p.secretsPath) && (m.ReadOnly || readOnlyVolume(vols[m.Name])):
				errs = append(errs, fmt.Errorf("container %q: %s would be created inside the read-only mount %s (volume %q), which cannot be done; choose another %s", c.Name, p.secretsPath, m.MountPath, m.Name, AnnotationSecretsPath))
			}
		}
	}

	// The sidecar shares the Pod's network namespace: its port must be
	// free.
	if p.mode == ModeSidecar {
		for _, c := range all {
			for _, port := range c.Ports {
				if port.ContainerPort == p.port && (port.Protocol == "" || port.Protocol == corev1.ProtocolTCP) {
					errs = append(errs, fmt.Errorf("container %q uses port %d, the injector sidecar's; set %s to a free port", c.Name, p.port, AnnotationPort))
				}
			}
		}
		if pod.Spec.HostNetwork {
			warnings = append(warnings, fmt.Sprintf("hostNetwork: the injector sidecar listens on port %d of the node; a second such Pod on the node cannot start (set %s per Pod)", p.port, AnnotationPort))
		}
	}

	id, idWarnings, err := decideIdentity(pod, p, targets)
	warnings = append(warnings, idWarnings...)
	if err != nil {
		errs = append(errs, err)
	}
	return id, warnings, errors.Join(errs...)
}

// readOnlyVolume reports volume types the kubelet always mounts read-only.
func readOnlyVolume(v corev1.Volume) bool {
	return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
}

// decideIdentity picks the injector's user and group and checks that every
// target container can read every file it writes:
//
//   - injector.io/run-as-user and run-as-group win;
//   - a Pod running as root (runAsUser: 0) would make the injector break its
//     own runAsNonRoot: it runs as the image's 65532 instead;
//   - files only their owner may read (no "others" read bit) are written as
//     the apps' user when every target runs as one known user.
//
// The rendered files are then owned by the injector's UID and, with a Pod
// fsGroup, by that group (the kubelet makes the volume's directory setgid).
func decideIdentity(pod *corev1.Pod, p plan, targets map[string]bool) (identity, []string, error) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	var id identity
	var warnings []string
	uid := int64(imageUser) // what the injector effectively runs as
	switch {
	case p.runAsUser != nil:
		id.uid, uid = p.runAsUser, *p.runAsUser
	case psc.RunAsUser != nil && *psc.RunAsUser == 0:
		id.uid = ptr(int64(imageUser)) // warned about below, with the final choice
	case psc.RunAsUser != nil:
		uid = *psc.RunAsUser
	}
	var gid *int64 // what the injector effectively runs as; nil: unknown
	switch {
	case p.runAsGroup != nil:
		id.gid, gid = p.runAsGroup, p.runAsGroup
	case psc.RunAsGroup != nil:
		gid = psc.RunAsGroup
	case psc.RunAsUser == nil && p.runAsUser == nil:
		gid = ptr(int64(imageUser))
	}

	userOf := func(c corev1.Container) (uid, gid *int64) {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
		if sc := c.SecurityContext; sc != nil {
			uid, gid = cmpOr(sc.RunAsUser, uid), cmpOr(sc.RunAsGroup, gid)
		}
		return uid, gid
	}
	var readers []corev1.Container // targets, in Pod order
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if targets[c.Name] {
			readers = append(readers, c)
		}
	}

	modes := map[string]bool{}
	for _, name := range p.templates() {
		modes[p.modeOf(name)] = true
	}
	ownerOnly := false // some file is readable by neither "others" nor a shared group
	for m := range modes {
		n, _ := strconv.ParseUint(m, 8, 32)
		if n&0o004 == 0 && (n&0o040 == 0 || psc.FSGroup == nil) {
			ownerOnly = true
		}
	}
	// Fix: run the injector as the one user every target runs as.
	if ownerOnly && p.runAsUser == nil {
		users := map[int64]bool{}
		known := true
		for _, c := range readers {
			if u, _ := userOf(c); u != nil {
				users[*u] = true
			} else {
				known = false
			}
		}
		if known && len(users) == 1 {
			if u := slices.Collect(maps.Keys(users))[0]; u != 0 && u != uid {
				id.uid, uid = ptr(u), u
			}
		}
	}

	if p.runAsUser == nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		warnings = append(warnings, fmt.Sprintf("the Pod runs as root (runAsUser: 0); the injector runs as UID %d instead (set %s to choose)", uid, AnnotationRunAsUser))
	}

	var errs []error
	for _, m := range slices.Sorted(maps.Keys(modes)) {
		n, _ := strconv.ParseUint(m, 8, 32)
		if n&0o004 != 0 {
			continue // everyone reads it
		}
		for _, c := range readers {
			cu, cg := userOf(c)
			switch {
			case n&0o040 != 0 && (psc.FSGroup != nil || cg != nil && gid != nil && *cg == *gid):
				// group-readable, and the container is in the group
			case cu == nil:
				warnings = append(warnings, fmt.Sprintf("container %q: its user is set by its image, so the webhook cannot check it can read files with mode %s owned by UID %d", c.Name, m, uid))
			case *cu == 0 && canOverrideDAC(c):
				// root with CAP_DAC_OVERRIDE reads anything
			case n&0o400 != 0 && *cu == uid:
				// the owner
			default:
				errs = append(errs, fmt.Errorf("file mode %s: container %q runs as UID %d but the injector writes the files as UID %d, so it could not read them; "+
					"set the same securityContext.runAsUser for the Pod, %s: %q, or a Pod fsGroup with a group-readable mode like 0440",
					m, c.Name, *cu, uid, AnnotationRunAsUser, strconv.FormatInt(*cu, 10)))
			}
		}
	}
	return id, warnings, errors.Join(errs...)
}

// canOverrideDAC reports whether a root container keeps CAP_DAC_OVERRIDE,
// which container runtimes grant by default.
func canOverrideDAC(c corev1.Container) bool {
	caps := c.SecurityContext
	if caps == nil || caps.Capabilities == nil {
		return true
	}
	if slices.Contains(caps.Capabilities.Add, "DAC_OVERRIDE") || slices.Contains(caps.Capabilities.Add, "CAP_DAC_OVERRIDE") {
		return true
	}
	return !slices.ContainsFunc(caps.Capabilities.Drop, func(c corev1.Capability) bool {
		return c == "ALL" || c == "DAC_OVERRIDE" || c == "CAP_DAC_OVERRIDE"
	})
}

// cmpOr returns a if it is set, else b.
func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
