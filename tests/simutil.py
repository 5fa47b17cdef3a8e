"""Small program builders shared by the core tests."""

from autellix.program import Call, Program


def chain(pid, outputs, new_prompt=32, delay=0.0, workload="test"):
    calls, hist, prev = [], 0, None
    for j, out in enumerate(outputs):
        calls.append(Call(id=f"c{j}", parents=(prev,) if prev else (), shared_prompt_tokens=hist,
                          new_prompt_tokens=new_prompt, output_tokens=out,
                          tool_delay=delay if prev else 0.0))
        hist += new_prompt + out
        prev = f"c{j}"
    return Program(id=pid, calls=tuple(calls), workload=workload)


def fan(pid, root_out, child_outs, join_out=None, new_prompt=32):
    calls = [Call(id="r", new_prompt_tokens=new_prompt, output_tokens=root_out)]
    kids = []
    for i, out in enumerate(child_outs):
        calls.append(Call(id=f"k{i}", parents=("r",), shared_prompt_tokens=new_prompt + root_out,
                          new_prompt_tokens=new_prompt, output_tokens=out))
        kids.append(f"k{i}")
    if join_out:
        calls.append(Call(id="j", parents=tuple(kids), new_prompt_tokens=new_prompt,
                          output_tokens=join_out))
    return Program(id=pid, calls=tuple(calls), workload="test")
