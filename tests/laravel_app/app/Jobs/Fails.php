<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use RuntimeException;

/** Always throws, so it ends in failed_jobs with a PHP exception and trace. */
class Fails implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;

    public $tries = 1;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        throw new RuntimeException("deliberate failure of {$this->tag}");
    }
}
