// Old import path, kept only for test/messaging.test.ts until it imports node-processes.ts and
// test-cluster.ts instead; nothing else may import it.
export { startNodeProcesses as startCluster, ProcessCluster as Cluster, type ProcessNode as ImNode } from "./node-processes";
