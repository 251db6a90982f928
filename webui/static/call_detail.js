// Call detail and shared call: a turn's time plays the recording from there, the turn being
// played is highlighted, the AI's turns can be hidden, and texts copied.
(function () {
  'use strict';
  const audio = document.getElementById('recording');
  const transcript = document.getElementById('transcript');
  const turns = transcript ? Array.from(transcript.querySelectorAll('.turn')) : [];

  document.querySelectorAll('[data-seek]').forEach(function (el) {
    el.addEventListener('click', function () {
      if (!audio) return;
      audio.currentTime = parseFloat(el.dataset.seek) || 0;
      audio.play().catch(function () {});  // autoplay refusals leave it paused at the spot
    });
  });

  if (audio) {
    audio.addEventListener('timeupdate', function () {
      const t = audio.currentTime;
      turns.forEach(function (turn) {
        const on = t >= parseFloat(turn.dataset.start) && t < parseFloat(turn.dataset.end);
        turn.classList.toggle('playing', on);
      });
    });
  }

  const hide = document.getElementById('hide-ai');
  if (hide && transcript) {
    hide.addEventListener('change', function () {
      transcript.classList.toggle('hide-robot', hide.checked);
    });
  }

  // navigator.clipboard needs a secure context; consoles on plain http over a LAN fall
  // back to selecting a hidden field and execCommand('copy').
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error('copy refused'));
  }

  function copyButton(button, text) {
    const label = button.querySelector('span') || button;
    const before = label.textContent;
    copy(text()).then(function () {
      label.textContent = button.dataset.done;
    }, function () {
      label.textContent = button.dataset.failed;
    }).finally(function () {
      setTimeout(function () { label.textContent = before; }, 2000);
    });
  }

  const copyTranscript = document.getElementById('copy-transcript');
  const transcriptText = document.getElementById('transcript-text');
  if (copyTranscript && transcriptText) {
    copyTranscript.addEventListener('click', function () {
      copyButton(copyTranscript, function () { return transcriptText.value; });
    });
  }
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.addEventListener('click', function () {
      const field = document.querySelector(button.dataset.copy);
      copyButton(button, function () { return field.value; });
    });
  });
})();
