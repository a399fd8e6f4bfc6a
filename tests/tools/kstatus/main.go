// Command kstatus prints what Flux's health logic (kstatus, from
// sigs.k8s.io/cli-utils/pkg/kstatus/status, the library Flux's kustomize- and
// helm-controller use for `wait: true` and `healthChecks`) computes for each
// object it reads.
//
// Usage: kstatus [FILE...]   (no FILE or "-": standard input)
//
// Input: YAML or JSON, one object or many: a multi-document YAML stream, a
// JSON array, a JSON stream, or a List (kind: ...List with items). Output:
// one JSON line per object, in input order:
//
//	{"kind":"MaestroApply","namespace":"ns","name":"n","generation":2,
//	 "status":"Current","message":"Resource is Ready",
//	 "conditions":[{"type":"Reconciling","status":"True",...}]}
//
// "conditions" are the ones kstatus itself computes (Reconciling, Stalled),
// not the object's. A document that is no object is an error (exit 1).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Source     string      `json:"source,omitempty"`
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Namespace  string      `json:"namespace,omitempty"`
	Name       string      `json:"name"`
	Generation int64       `json:"generation"`
	Status     string      `json:"status"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Println("usage: kstatus [FILE...]  (YAML/JSON objects, lists or streams; no FILE or -: stdin)\nprints kstatus status.Compute per object, one JSON line each")
		return
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	out := json.NewEncoder(os.Stdout)
	for _, a := range args {
		objs, err := read(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", a, err)
			os.Exit(1)
		}
		for _, u := range objs {
			res, err := status.Compute(u)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kstatus: %s: %s/%s: %v\n", a, u.GetKind(), u.GetName(), err)
				os.Exit(1)
			}
			r := result{
				APIVersion: u.GetAPIVersion(),
				Kind:       u.GetKind(),
				Namespace:  u.GetNamespace(),
				Name:       u.GetName(),
				Generation: u.GetGeneration(),
				Status:     res.Status.String(),
				Message:    res.Message,
				Conditions: []condition{},
			}
			if a != "-" {
				r.Source = a
			}
			for _, c := range res.Conditions {
				r.Conditions = append(r.Conditions, condition{
					Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
				})
			}
			if err := out.Encode(r); err != nil {
				fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
				os.Exit(1)
			}
		}
	}
}

// read returns the objects of a file (or stdin for "-"), Lists flattened.
func read(path string) ([]*unstructured.Unstructured, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var docs []json.RawMessage
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		// A JSON array of objects.
		if err := json.Unmarshal(t, &docs); err != nil {
			return nil, err
		}
	} else {
		// YAML documents or a JSON stream (the decoder tells them apart and
		// turns YAML into JSON).
		dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(bytes.NewReader(data)), 4096)
		for i := 0; ; i++ {
			var doc json.RawMessage
			if err := dec.Decode(&doc); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
			if t := bytes.TrimSpace(doc); len(t) == 0 || string(t) == "null" {
				continue // an empty YAML document
			}
			docs = append(docs, doc)
		}
	}
	var objs []*unstructured.Unstructured
	for i, doc := range docs {
		// The unstructured JSON scheme keeps integers int64 (generation,
		// observedGeneration), as the API machinery Flux uses decodes them.
		o, err := runtime.Decode(unstructured.UnstructuredJSONScheme, doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: not a Kubernetes object: %w", i, err)
		}
		switch o := o.(type) {
		case *unstructured.Unstructured:
			objs = append(objs, o)
		case *unstructured.UnstructuredList:
			for j := range o.Items {
				objs = append(objs, &o.Items[j])
			}
		default:
			return nil, fmt.Errorf("document %d: unexpected %T", i, o)
		}
	}
	return objs, nil
}
