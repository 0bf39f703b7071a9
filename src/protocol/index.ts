export * from "./codes";
export * from "./frame";
export * from "./envelope";
export * from "./errors";
export * from "./bodies";
