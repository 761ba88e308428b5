<?php

use App\Jobs\Deadline;
use App\Jobs\Fails;
use App\Jobs\Record;
use App\Notifications\ResetPassword;
use Illuminate\Support\Facades\Artisan;
use Illuminate\Support\Facades\Cache;
use Illuminate\Support\Facades\Notification;

/*
 * app:dispatch KIND: queue --count jobs on --queue, tagged TAG-1, TAG-2, ...
 *   ok        App\Jobs\Record (appends its tag to storage/app/ran.log)
 *   fail      App\Jobs\Fails (throws; tries=1)
 *   deadline  App\Jobs\Deadline (retryUntil = dispatch + --window seconds)
 *   reset     App\Notifications\ResetPassword to --to (a queued mail notification)
 */
Artisan::command('app:dispatch {kind} {--count=1} {--queue=default} {--tag=php} {--window=60} {--to=user@example.com}',
    function (string $kind) {
        $count = (int) $this->option('count');
        $queue = $this->option('queue');
        for ($i = 1; $i <= $count; $i++) {
            $tag = $this->option('tag').'-'.$i;
            match ($kind) {
                'ok' => Record::dispatch($tag)->onQueue($queue),
                'fail' => Fails::dispatch($tag)->onQueue($queue),
                'deadline' => Deadline::dispatch($tag, (int) $this->option('window'))->onQueue($queue),
                'reset' => Notification::route('mail', $this->option('to'))
                    ->notify((new ResetPassword(bin2hex(random_bytes(16))))->onQueue($queue)),
                default => throw new InvalidArgumentException("unknown kind {$kind}"),
            };
        }
        $this->line("dispatched {$count} {$kind}");
    })->purpose('Queue test jobs');

// What Laravel's cache holds under KEY (JSON), through the configured store: to check that
// what ictq writes is what Laravel reads.
Artisan::command('app:cache-get {key}', function (string $key) {
    $this->line(json_encode(Cache::get($key)));
})->purpose('Print a cache value');

Artisan::command('app:cache-put {key} {value}', function (string $key, string $value) {
    Cache::forever($key, match (true) {
        $value === 'true' => true,
        is_numeric($value) => (int) $value,
        default => $value,
    });
})->purpose('Store a cache value forever');
