"""Algorithm 1 (Pyramid Reflection as test-time RL): route, retrieve, answer, evaluate, reflect; R <= 3 rounds;
fallback answer from the global caption C_g.

Every LLM reply that must be JSON (classifier, evaluator, reflector) goes through `ask_json`:
`understanding.json_retries` retries (default 1; smoke 0 to bound the tiny stand-in's cost), then a recorded
failure. A failed classification takes `understanding.fallback_route`; a failed evaluation counts as not
accepted (its score is recorded as null, never invented); a failed or empty refinement keeps the search text.
The Reflector is not asked after the last round (its refinement would not be used). Each round records how its
working set was selected: expand (Eq. 8), mmr-exact or mmr-greedy-swap (Eq. 9), or uniform (no reflection).
"""

from __future__ import annotations

import json
import time

from univid.llm.jsonout import ask_json, validate_classification, validate_evaluation, validate_reflection
from univid.reflection import retrieval
from univid.reflection.frame_pool import FramePool, TextEncoder, VisionEncoder, load_pool
from univid.reflection.templates import evaluator_system, render


class PyramidReflection:
    def __init__(self, ucfg: dict, encoder: VisionEncoder, text_encoder: TextEncoder, actor, roles: dict):
        self.u = ucfg
        self.encoder = encoder
        self.text = text_encoder
        self.actor = actor
        self.roles = roles
        self._captions: dict[str, dict] = {}
        self._routes: dict[str, tuple[str, dict]] = {}  # classifier results fetched ahead (prefetch_routes)
        self.text_passes = 0

    # ------------------------------------------------------------------------------------------ pieces
    def pool(self, video) -> FramePool:
        return load_pool(video, self.encoder, self.u["pool_size"], self.u.get("cache_dir"))

    def search_sims(self, pool: FramePool, text: str):
        self.text_passes += 1
        return retrieval.similarities(pool.embeds.numpy(), self.text.embed([text])[0].numpy())

    def global_caption(self, pool: FramePool) -> dict:
        """C_g: Single-Frame Analysis notes on the seed frames (the Actor sees each frame), then Frame Summarization."""
        if pool.key not in self._captions:
            seeds = retrieval.uniform_positions(len(pool.indices), self.u["seed_frames"])
            prompt = render("single_frame_analysis")
            notes = [self.actor.respond(pool, [p], prompt) for p in seeds]
            caption = self.roles["summarizer"].generate(render("frame_summarization", notes=notes))
            self._captions[pool.key] = {"caption": caption, "seed_frames": [pool.indices[p] for p in seeds],
                                        "notes": notes}
        return self._captions[pool.key]

    def prefetch_routes(self, questions: list[str], workers: int) -> int:
        """Classify many questions at once, up to `workers` requests in flight: routing needs only the question, so
        a job asks its remote classifier for every question ahead of the (sequential) Actor rounds. A question whose
        request fails is left to classify() to ask again in its turn. Returns the questions classified."""
        from concurrent.futures import ThreadPoolExecutor

        from univid.llm.base import LLMError

        todo = [q for q in dict.fromkeys(questions) if q not in self._routes]

        def one(q: str):
            try:
                return q, self._classify(q)
            except LLMError:
                return q, None

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="classifier") as pool:
            for q, routed in pool.map(one, todo):
                if routed is not None:
                    self._routes[q] = routed
        return sum(q in self._routes for q in todo)

    def classify(self, question: str) -> tuple[str, dict]:
        if question in self._routes:
            return self._routes.pop(question)
        return self._classify(question)

    def _classify(self, question: str) -> tuple[str, dict]:
        res = ask_json(self.roles["classifier"], render("question_type_classification", question=question),
                       validate_classification, retries=self.retries)
        route = res.value["qtype"] if res.ok else self.u["fallback_route"]
        return route, {"route_source": "classifier" if res.ok else "fallback", **res.record()}

    def actor_answer(self, pool: FramePool, positions: list[int], question: str, caption: str) -> str:
        """The question as the stage II user turn; C_g (if any) in the system turn (see actor.py)."""
        system = render("actor", global_caption=caption) if caption else None
        return self.actor.respond(pool, positions, question, system=system)

    @property
    def retries(self) -> int:
        return int(self.u.get("json_retries", 1))

    def evaluate(self, question: str, caption: str, answer: str):
        return ask_json(self.roles["evaluator"], render("evaluator_case", question=question, global_caption=caption,
                                                        answer=answer), validate_evaluation, system=evaluator_system(),
                        retries=self.retries)

    def reflect(self, question: str, caption: str, answer: str, evaluation) -> object:
        eval_json = json.dumps(evaluation.value) if evaluation.ok else (evaluation.raw[-1] if evaluation.raw else "")
        return ask_json(self.roles["reflector"], render("reflection", question=question, global_caption=caption,
                                                        last_answer=answer, eval_json=eval_json), validate_reflection,
                        retries=self.retries)

    # ------------------------------------------------------------------------------------------ Algorithm 1
    def counters(self) -> dict:
        seen = {id(r.llm): r.llm for r in self.roles.values()}
        tokens = self.actor.input_tokens
        return {"llm_calls": sum(l.calls for l in seen.values()), "llm_cache_hits": sum(l.hits for l in seen.values()),
                "actor_calls": self.actor.calls, "actor_cache_hits": self.actor.hits,
                "actor_vit_tokens": tokens["vit"], "actor_vae_tokens": tokens["vae"],
                "text_encoder_passes": self.text_passes,
                "actor_vit_passes": getattr(self.actor.vit_encoder, "passes", 0),
                "actor_frames_encoded": getattr(self.actor.vit_encoder, "frames_encoded", 0)}

    def ask(self, video, question: str) -> dict:
        """Answer one question about one video; returns the trace (answer, route, rounds, counts)."""
        t0 = time.perf_counter()
        before = self.counters()
        pool = self.pool(video)
        n = len(pool.indices)
        trace = {"video": str(video), "question": question, "pool": {"key": pool.key, "size": n,
                 "frames": pool.indices, "cache_hit": pool.cache_hit}, "rounds": []}
        if not self.u["reflection"]:
            answer = self._uniform(pool, question, trace)
        else:
            answer = self._reflect_loop(pool, question, trace)
        trace["answer"] = answer
        after = self.counters()
        actor_vit = {k: after.pop(k) - before.pop(k) for k in ("actor_vit_passes", "actor_frames_encoded")}
        trace["counts"] = {"vision_encoder_passes": pool.encoder_passes + actor_vit["actor_vit_passes"],
                           "frames_encoded": pool.frames_encoded + actor_vit["actor_frames_encoded"],
                           "retrieval_encoder_passes": pool.encoder_passes, "rounds": len(trace["rounds"]),
                           **{k: after[k] - before[k] for k in after}}
        trace["wall_s"] = round(time.perf_counter() - t0, 3)
        return trace

    def _uniform(self, pool: FramePool, question: str, trace: dict) -> str:
        """Ablation `understanding.reflection: false` (Table 7, w/o Reflection): one Actor pass on uniform frames."""
        positions = retrieval.uniform_positions(len(pool.indices), self.u["uniform_frames"])
        answer = self.actor_answer(pool, positions, question, "")
        trace.update(route="uniform", stopped_by="no_reflection", global_caption=None)
        trace["rounds"].append(self._round_record(pool, 1, positions, question, answer, None))
        trace["rounds"][-1]["selection"] = "uniform"
        return answer

    def _reflect_loop(self, pool: FramePool, question: str, trace: dict) -> str:
        n = len(pool.indices)
        cap = self.global_caption(pool)
        caption = cap["caption"]
        route, route_record = self.classify(question)
        schedule = self.u["static_schedule"] if route == "static" else self.u["dynamic_schedule"]
        rounds = min(self.u["max_rounds"], len(schedule))
        trace.update(route=route, classification=route_record, global_caption=caption,
                     seed_frames=cap["seed_frames"], schedule=[min(k, n) for k in schedule[:rounds]])
        search, working = question, []
        for r in range(rounds):
            target = min(schedule[r], n)
            sims = self.search_sims(pool, search)
            if route == "static":
                working, method = retrieval.expand(sims, working, target), "expand"
            else:
                working, method = retrieval.mmr_select(pool.embeds.numpy(), sims, working or list(range(n)), target,
                                                       self.u["mmr_lambda"])
            answer = self.actor_answer(pool, working, question, caption)
            ev = self.evaluate(question, caption, answer)
            rec = self._round_record(pool, r + 1, working, search, answer, ev)
            rec["selection"] = method
            trace["rounds"].append(rec)
            if rec["accepted"]:
                trace["stopped_by"] = "evaluator"
                return answer
            if r + 1 < rounds:
                rf = self.reflect(question, caption, answer, ev)
                refined = rf.value["refined_query"] if rf.ok else ""
                rec["reflection"] = rf.record()
                rec["refined_query"] = refined or None
                if refined:
                    search = refined
        trace["stopped_by"] = "fallback"
        fallback = self.actor.respond(None, [], render("global_answer", question=question, global_caption=caption))
        trace["fallback_answer"] = fallback
        return fallback

    def _round_record(self, pool: FramePool, r: int, positions: list[int], search: str, answer: str, ev) -> dict:
        rec = {"round": r, "frames": [pool.indices[p] for p in positions], "positions": list(positions),
               "timestamps": pool.timestamps(positions), "search_text": search, "answer": answer,
               "score": None, "verdict": None, "accepted": False}
        if ev is not None:
            rec["evaluation"] = ev.record()
            if ev.ok:
                rec["score"], rec["verdict"] = ev.value["score"], ev.value["verdict"]
                rec["brief_reason"] = ev.value["brief_reason"]
                rec["accepted"] = ev.value["score"] >= self.u["accept_score"] or ev.value["verdict"] == "accept"
        return rec
