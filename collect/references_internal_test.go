package collect

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReferences(t *testing.T) {
	p := corev1.Pod{Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm1"}}}},
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s1"}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s2"}}}}}}},
		},
		InitContainers:   []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm2"}}}}}},
		Containers:       []corev1.Container{{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s1"}, Key: "k"}}}}}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}},
	}}
	cms, secrets := references(p)
	if !reflect.DeepEqual(cms, []string{"cm1", "cm2"}) || !reflect.DeepEqual(secrets, []string{"s1", "s2", "pull"}) {
		t.Errorf("configmaps %v secrets %v", cms, secrets)
	}
}

func TestTargetEmpty(t *testing.T) {
	if !(Target{Namespace: "x"}).empty() {
		t.Error("a namespace alone is not a target")
	}
	if (Target{Selector: "app"}).empty() {
		t.Error("a selector is a target")
	}
}
