// One participant's class page, as a product frontend would build it (a fixture, not a
// product page): the typed API client for everything HTTP, Microsoft's Web PubSub client for
// real time, WebRTC between the two pages with signalling through the class's video group, and
// MediaRecorder on the mentor's side. run.mjs drives two of these through `window.classPage`.
import { WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";

import { createCodeConnectClient, type CodeConnectClient } from "../../shared/api-client/src/index";

interface SignIn {
  apiBase: string;
  email: string;
  password: string;
  totpCode?: string;
}

type Signal =
  | { type: "offer" | "answer"; from: string; sdp: string }
  | { type: "candidate"; from: string; candidate: RTCIceCandidateInit };

class ClassPage {
  private api!: CodeConnectClient;
  private token?: string;
  private socket?: WebPubSubClient;
  private peer?: RTCPeerConnection;
  private local?: MediaStream;
  private pendingCandidates: RTCIceCandidateInit[] = [];
  private statsTimer?: number;
  private recorder?: MediaRecorder;
  private recordingSince = 0;
  private uploads: Promise<void>[] = [];
  userId = "";
  bookingId = "";
  connectionId = "";
  connections = 0;
  /// Chat messages seen, by the moment they arrived (ms since page load).
  chat: { messageId: string; text: string; at: number }[] = [];
  presence: { event: string; userId: string }[] = [];
  statsPosted = 0;
  partsUploaded = 0;
  /// What went wrong in the background (a rejoin refused, say), for the driver to check.
  problems: string[] = [];

  async signIn({ apiBase, email, password, totpCode }: SignIn): Promise<string> {
    this.api = createCodeConnectClient({ baseUrl: apiBase, token: () => this.token });
    const login = await this.api.POST("/api/auth/login", { body: { email, password, totpCode } });
    if (!login.data || !("sessionToken" in login.data)) {
      throw new Error(`login failed: ${login.response.status} ${JSON.stringify(login.error ?? login.data)}`);
    }
    this.token = login.data.sessionToken;
    this.userId = login.data.user.userId;
    return this.userId;
  }

  /// Negotiates a Web PubSub URL and connects; a connection that comes back after a drop is a
  /// new one, which joins the class again and fetches the chat it missed.
  async connect(): Promise<string> {
    const negotiated = await this.api.POST("/api/realtime/negotiate");
    if (!negotiated.data) throw new Error(`negotiate: ${JSON.stringify(negotiated.error)}`);
    const url = negotiated.data.url;
    // The subprotocol negotiate names (json.webpubsub.azure.v1): after a drop the client connects
    // again at once, as a new connection.
    this.socket = new WebPubSubClient(url, { protocol: WebPubSubJsonProtocol() });
    // The other participant's signals come from the group; the API's pushes (presence, chat)
    // come from the server, as Web PubSub labels whatever its REST API sends.
    this.socket.on("group-message", (event) => void this.onMessage(event.message.data));
    this.socket.on("server-message", (event) => void this.onMessage(event.message.data));
    this.socket.on("connected", (event) => {
      this.connectionId = event.connectionId;
      this.connections += 1;
      if (this.connections > 1 && this.bookingId) void this.rejoin();
    });
    await this.socket.start();
    await until(() => this.connectionId !== "", "connected");
    return this.connectionId;
  }

  /// Joins the class's video group (through the API, which checks participation) and its chat.
  async join(bookingId: string): Promise<{ status: number; code?: string }> {
    this.bookingId = bookingId;
    const joined = await this.api.POST("/api/bookings/{booking_id}/video/join", {
      params: { path: { booking_id: bookingId } },
      body: { connectionId: this.connectionId },
    });
    if (!joined.data) {
      return { status: joined.response.status, code: (joined.error as { code?: string } | undefined)?.code };
    }
    const subscribed = await this.api.POST("/api/bookings/{booking_id}/messages/subscribe", {
      params: { path: { booking_id: bookingId } },
      body: { connectionId: this.connectionId },
    });
    if (!subscribed.data) throw new Error(`subscribe: ${JSON.stringify(subscribed.error)}`);
    if (!this.peer) await this.preparePeer(joined.data.iceServers);
    return { status: joined.response.status };
  }

  /// The mentor starts the call once both are in the group.
  async call(): Promise<void> {
    const peer = this.peer!;
    const offer = await peer.createOffer();
    await peer.setLocalDescription(offer);
    await this.signal({ type: "offer", from: this.userId, sdp: offer.sdp! });
  }

  async connectionState(): Promise<string> {
    return this.peer?.connectionState ?? "none";
  }

  /// Video frames decoded from the other side so far (getStats, inbound-rtp video).
  async framesDecoded(): Promise<number> {
    if (!this.peer) return 0;
    let frames = 0;
    (await this.peer.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") frames += report.framesDecoded ?? 0;
    });
    return frames;
  }

  async sendChat(text: string): Promise<string> {
    const sent = await this.api.POST("/api/bookings/{booking_id}/messages", {
      params: { path: { booking_id: this.bookingId } },
      body: { message: text, clientMessageId: crypto.randomUUID() },
    });
    if (!sent.data) throw new Error(`chat: ${JSON.stringify(sent.error)}`);
    return sent.data.messageId;
  }

  /// Sends a signalling message to the class group directly (what a stranger would try).
  async trySignal(group: string): Promise<string> {
    try {
      await this.socket!.sendToGroup(group, { type: "offer", from: this.userId, sdp: "v=0" }, "json", {
        noEcho: true,
      });
      return "sent";
    } catch (error) {
      return `refused: ${(error as Error).message}`;
    }
  }

  /// Drops the WebSocket as a network failure would; the client reconnects by itself.
  dropSocket(): void {
    for (const socket of openSockets) socket.close(4000, "network drop (test)");
  }

  /// Posts a WebRTC stats sample every `everyMs`, as the product's client does.
  startStats(everyMs: number): void {
    this.statsTimer = window.setInterval(() => void this.postStats(), everyMs);
  }

  stopStats(): void {
    window.clearInterval(this.statsTimer);
  }

  /// Records the local camera and microphone in WebM, each `partMs` a part, uploaded straight
  /// to storage through the write URL the API gives for it, then completed.
  startRecording(partMs: number): void {
    const recorder = new MediaRecorder(this.local!, { mimeType: "video/webm;codecs=vp8,opus" });
    let partNumber = 0;
    recorder.ondataavailable = (event) => {
      if (event.data.size === 0) return;
      partNumber += 1;
      this.uploads.push(this.uploadPart(partNumber, event.data));
    };
    recorder.start(partMs);
    this.recorder = recorder;
    this.recordingSince = performance.now();
  }

  /// Stops recording and waits for every part's upload: the parts and the seconds recorded.
  async stopRecording(): Promise<{ parts: number; seconds: number }> {
    const recorder = this.recorder!;
    const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    recorder.stop();
    await stopped;
    const seconds = (performance.now() - this.recordingSince) / 1000;
    await Promise.all(this.uploads);
    return { parts: this.partsUploaded, seconds };
  }

  private async uploadPart(partNumber: number, part: Blob): Promise<void> {
    const path = { booking_id: this.bookingId, part_number: partNumber };
    const target = await this.api.POST("/api/bookings/{booking_id}/recording/parts/{part_number}/upload", {
      params: { path },
    });
    if (!target.data) throw new Error(`part ${partNumber}: ${JSON.stringify(target.error)}`);
    const put = await fetch(target.data.url, {
      method: target.data.method,
      headers: target.data.headers as Record<string, string>,
      body: part,
    });
    if (!put.ok) throw new Error(`part ${partNumber} upload: ${put.status}`);
    const completed = await this.api.POST("/api/bookings/{booking_id}/recording/parts/{part_number}/complete", {
      params: { path },
    });
    if (completed.error) throw new Error(`part ${partNumber} complete: ${JSON.stringify(completed.error)}`);
    this.partsUploaded += 1;
  }

  private async preparePeer(iceServers: RTCIceServer[]): Promise<void> {
    this.local = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
    (document.getElementById("local") as HTMLVideoElement).srcObject = this.local;
    const peer = new RTCPeerConnection({ iceServers });
    for (const track of this.local.getTracks()) peer.addTrack(track, this.local);
    peer.onicecandidate = (event) => {
      if (event.candidate) void this.signal({ type: "candidate", from: this.userId, candidate: event.candidate.toJSON() });
    };
    peer.ontrack = (event) => {
      (document.getElementById("remote") as HTMLVideoElement).srcObject = event.streams[0] ?? null;
    };
    peer.onconnectionstatechange = () => {
      document.getElementById("state")!.textContent = peer.connectionState;
    };
    this.peer = peer;
  }

  private async signal(message: Signal): Promise<void> {
    await this.socket!.sendToGroup(`booking.${this.bookingId}.video`, message, "json", { noEcho: true });
  }

  private async onMessage(payload: unknown): Promise<void> {
    const data = payload as Record<string, unknown>;
    if (data.from === this.userId) return;
    switch (data.type) {
      case "presence":
        this.presence.push({ event: data.event as string, userId: data.userId as string });
        return;
      case "chat.message": {
        const message = data.message as { messageId: string; message: string };
        this.noteChat(message.messageId, message.message);
        return;
      }
      case "offer": {
        const peer = this.peer!;
        await peer.setRemoteDescription({ type: "offer", sdp: data.sdp as string });
        await this.flushCandidates();
        const answer = await peer.createAnswer();
        await peer.setLocalDescription(answer);
        await this.signal({ type: "answer", from: this.userId, sdp: answer.sdp! });
        return;
      }
      case "answer":
        await this.peer!.setRemoteDescription({ type: "answer", sdp: data.sdp as string });
        await this.flushCandidates();
        return;
      case "candidate":
        this.pendingCandidates.push(data.candidate as RTCIceCandidateInit);
        if (this.peer?.remoteDescription) await this.flushCandidates();
        return;
    }
  }

  private async flushCandidates(): Promise<void> {
    for (const candidate of this.pendingCandidates.splice(0)) await this.peer!.addIceCandidate(candidate);
  }

  private noteChat(messageId: string, text: string): void {
    if (this.chat.some((seen) => seen.messageId === messageId)) return;
    this.chat.push({ messageId, text, at: performance.now() });
    const line = document.createElement("li");
    line.textContent = text;
    document.getElementById("chat")!.append(line);
  }

  /// After a reconnect: the new connection joins the class again, and what was said meanwhile
  /// comes from the chat's history.
  private async rejoin(): Promise<void> {
    const joined = await this.join(this.bookingId);
    if (joined.status !== 200) this.problems.push(`rejoin: ${joined.status} ${joined.code}`);
    const history = await this.api.GET("/api/bookings/{booking_id}/messages", {
      params: { path: { booking_id: this.bookingId }, query: { limit: 100 } },
    });
    for (const message of history.data?.items ?? []) {
      if (message.senderId !== this.userId) this.noteChat(message.messageId, message.message);
    }
  }

  private async postStats(): Promise<void> {
    if (!this.peer) return;
    const stats = await this.peer.getStats();
    let rtt: number | undefined;
    let connectionType = "host";
    stats.forEach((report) => {
      if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
        rtt = (report.currentRoundTripTime ?? 0) * 1000;
        const local = stats.get(report.localCandidateId);
        if (local?.candidateType) connectionType = local.candidateType;
      }
    });
    const posted = await this.api.POST("/api/webrtc/stats", {
      body: {
        bookingId: this.bookingId,
        samples: [{ recordedAt: new Date().toISOString(), connectionType, rttMs: rtt, packetLoss: 0, healthScore: 100 }],
      },
    });
    if (!posted.error) this.statsPosted += 1;
  }
}

/// Every WebSocket the page opens, so a test can drop them as a network failure would.
const openSockets = new Set<WebSocket>();
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    openSockets.add(this);
    this.addEventListener("close", () => openSockets.delete(this));
  }
};

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

(window as unknown as { classPage: ClassPage }).classPage = new ClassPage();
